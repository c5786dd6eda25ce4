/* One static binary, two names: tsswarm-shim runs the shim, anything else the runtime CLI. */
#include <string.h>

int runtime_main(int argc, char **argv);
int shim_main(int argc, char **argv);

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (strcmp(base, "tsswarm-shim") == 0) return shim_main(argc, argv);
	return runtime_main(argc, argv);
}
