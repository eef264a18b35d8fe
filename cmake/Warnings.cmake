# Warning-free under gcc and clang with these.
add_compile_options(-Wall -Wextra -Werror -Wshadow -Wpointer-arith
	-Wmissing-prototypes -Wstrict-prototypes -Wimplicit-fallthrough
	-Wno-unused-parameter)
