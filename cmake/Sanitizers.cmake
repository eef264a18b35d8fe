# Sanitizers.cmake: -DSANITIZE=address,undefined or -DSANITIZE=thread
# instruments every target (the library, the modules, the tests) and says
# how to run a program under the instrumented preload.
#
# An instrumented libsockfilter.so preloaded into a program that is not
# instrumented (curl, python3) needs the sanitizer runtime loaded before
# it: LD_PRELOAD="RUNTIME:libsockfilter.so" (ASan insists on being first
# in the initial library list).  Programs that are not ours would report
# their own leaks, so the options turn leak detection off; scripts/test.sh
# turns it back on for the unit tests, which do not preload.
#
# Results, for the test registrations and for scripts:
#   SF_PRELOAD_PREFIX   the runtime to put before libsockfilter.so in
#                       LD_PRELOAD ("" when none is needed)
#   SF_SANITIZER_ENV    a list of NAME=VALUE for the ENVIRONMENT property of
#                       tests that start programs under the preload:
#                       SF_SANITIZE, SF_PRELOAD_PREFIX and the *SAN_OPTIONS
#   <build>/sanitizer.env   the same as sh "export" lines (written for
#                       every build, empty values when not sanitized), so
#                       `. build-asan/sanitizer.env; ctest ...` reproduces
#                       what scripts/test.sh runs.
#
# Runners put the prefix first:
#   LD_PRELOAD="${SF_PRELOAD_PREFIX:+$SF_PRELOAD_PREFIX:}$lib"

set(SF_PRELOAD_PREFIX "")
set(SF_SANITIZER_ENV "")
set(_sf_asan_options "")
set(_sf_ubsan_options "")
set(_sf_tsan_options "")

if(SANITIZE)
	string(REPLACE " " "" _sf_san "${SANITIZE}")
	string(REPLACE "," ";" _sf_san_list "${_sf_san}")
	foreach(s ${_sf_san_list})
		if(NOT s MATCHES "^(address|undefined|thread|leak)$")
			message(FATAL_ERROR "SANITIZE: unknown sanitizer '${s}' "
				"(use address,undefined or thread)")
		endif()
	endforeach()
	if("thread" IN_LIST _sf_san_list AND
	    ("address" IN_LIST _sf_san_list OR "leak" IN_LIST _sf_san_list))
		message(FATAL_ERROR "SANITIZE: thread cannot be combined with address or leak")
	endif()

	add_compile_options(-fsanitize=${_sf_san} -fno-omit-frame-pointer -g)
	# SF_ASSERT() is active in sanitizer builds (STYLE.md).
	add_compile_definitions(SF_DEBUG=1)
	add_link_options(-fsanitize=${_sf_san})
	if("undefined" IN_LIST _sf_san_list)
		# A UBSan report fails the test instead of scrolling by.
		add_compile_options(-fno-sanitize-recover=undefined)
	endif()

	# The runtime that must come first in LD_PRELOAD.
	set(_sf_rt "")
	if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
		if("address" IN_LIST _sf_san_list)
			set(_sf_rt libasan.so)
		elseif("thread" IN_LIST _sf_san_list)
			set(_sf_rt libtsan.so)
		endif()
	elseif(CMAKE_C_COMPILER_ID MATCHES "Clang")
		if("address" IN_LIST _sf_san_list)
			# clang links a static runtime into executables by default;
			# a preloaded shared one beside it would be a second copy.
			# Everything uses the shared runtime instead.
			add_link_options(-shared-libasan)
			set(_sf_rt libclang_rt.asan-${CMAKE_SYSTEM_PROCESSOR}.so)
		elseif("thread" IN_LIST _sf_san_list)
			message(WARNING "SANITIZE=thread with clang: programs that "
				"are not instrumented cannot preload the library "
				"(clang 14's shared TSan runtime crashes when preloaded); "
				"use gcc for the TSan build")
		endif()
	endif()
	if(_sf_rt)
		execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=${_sf_rt}
			OUTPUT_VARIABLE _sf_rt_path OUTPUT_STRIP_TRAILING_WHITESPACE
			RESULT_VARIABLE _sf_rc)
		if(NOT _sf_rc EQUAL 0 OR NOT IS_ABSOLUTE "${_sf_rt_path}"
		    OR NOT EXISTS "${_sf_rt_path}")
			message(FATAL_ERROR "SANITIZE=${SANITIZE}: the runtime ${_sf_rt} "
				"was not found by ${CMAKE_C_COMPILER} "
				"(Debian: gcc's come with gcc, clang's with libclang-rt-14-dev)")
		endif()
		set(SF_PRELOAD_PREFIX "${_sf_rt_path}")
		if(CMAKE_C_COMPILER_ID MATCHES "Clang")
			# Executables linked with -shared-libasan must find it.
			get_filename_component(_sf_rt_dir "${_sf_rt_path}" DIRECTORY)
			add_link_options(-Wl,-rpath,${_sf_rt_dir})
		endif()
	endif()

	if("address" IN_LIST _sf_san_list)
		set(_sf_asan_options
			"detect_leaks=0:verify_asan_link_order=0:halt_on_error=1:abort_on_error=0:print_summary=1")
	endif()
	if("undefined" IN_LIST _sf_san_list)
		set(_sf_ubsan_options "print_stacktrace=1:halt_on_error=1")
	endif()
	if("thread" IN_LIST _sf_san_list)
		set(_sf_tsan_options "halt_on_error=1:second_deadlock_stack=1")
	endif()
	set(SF_SANITIZER_ENV
		"SF_SANITIZE=${_sf_san}"
		"SF_PRELOAD_PREFIX=${SF_PRELOAD_PREFIX}")
	if(_sf_asan_options)
		list(APPEND SF_SANITIZER_ENV "ASAN_OPTIONS=${_sf_asan_options}")
	endif()
	if(_sf_ubsan_options)
		list(APPEND SF_SANITIZER_ENV "UBSAN_OPTIONS=${_sf_ubsan_options}")
	endif()
	if(_sf_tsan_options)
		list(APPEND SF_SANITIZER_ENV "TSAN_OPTIONS=${_sf_tsan_options}")
	endif()
	message(STATUS "Sanitizers: ${_sf_san}; preload prefix: "
		"${SF_PRELOAD_PREFIX}")
else()
	set(_sf_san "")
endif()

# <build>/sanitizer.env: the same facts for shell scripts.
set(_sf_env "# Written by cmake/Sanitizers.cmake: source it before running\n")
string(APPEND _sf_env "# the tests of this build by hand (scripts/test.sh does).\n")
string(APPEND _sf_env "export SF_SANITIZE='${_sf_san}'\n")
string(APPEND _sf_env "export SF_PRELOAD_PREFIX='${SF_PRELOAD_PREFIX}'\n")
foreach(v ASAN UBSAN TSAN)
	string(TOLOWER ${v} _sf_lv)
	if(_sf_${_sf_lv}_options)
		string(APPEND _sf_env "export ${v}_OPTIONS='${_sf_${_sf_lv}_options}'\n")
	else()
		string(APPEND _sf_env "unset ${v}_OPTIONS\n")
	endif()
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/sanitizer.env "${_sf_env}")
