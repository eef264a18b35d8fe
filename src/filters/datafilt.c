typedef int sf_placeholder;
