/* placeholder */
typedef int sf_placeholder_fdtable;
