/* A small program for the three-stage build example: greets with
 * $GREETING and reports where and as whom it runs. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char cwd[256];
	const char *greeting = getenv("GREETING");
	if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 't')
		return greeting ? 0 : 1; /* the test stage's self-check */
	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = 0;
	printf("%s, %s! cwd=%s uid=%d\n", greeting ? greeting : "hello",
	       argc > 1 ? argv[1] : "world", cwd, (int)getuid());
	return 0;
}
