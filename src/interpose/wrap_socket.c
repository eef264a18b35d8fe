/* placeholder */
typedef int sf_placeholder_wrap_socket;
