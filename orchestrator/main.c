/* orch — the command line. */
#include "orchestrator/orch.h"

#define ORCH_VERSION "0.1.0"

static const struct orch_command commands[] = {
	{"config", cmd_config, "Parse, resolve and render compose file in canonical format"},
	{"version", cmd_version, "Show the orch version information"},
	{"images", cmd_images, "List images"},
	{"image", cmd_image, "Manage images"},
	{"volume", cmd_volume, "Manage volumes"},
};

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("orch version %s\n", ORCH_VERSION);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch [OPTIONS] COMMAND\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	log_init("orch");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (streq(argv[1], "--help") || streq(argv[1], "-h") ||
	    streq(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (streq(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "orch: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
