/* stats.c: placeholder until written */
typedef int sf_placeholder_stats;
