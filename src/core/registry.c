/* registry.c: placeholder until written */
typedef int sf_placeholder_registry;
