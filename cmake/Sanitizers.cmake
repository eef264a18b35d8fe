# -DSANITIZE=address,undefined or -DSANITIZE=thread
if(SANITIZE)
	add_compile_options(-fsanitize=${SANITIZE} -fno-omit-frame-pointer -g
		-DSF_DEBUG=1)
	add_link_options(-fsanitize=${SANITIZE})
	if(SANITIZE MATCHES undefined)
		add_compile_options(-fno-sanitize-recover=undefined)
	endif()
endif()
