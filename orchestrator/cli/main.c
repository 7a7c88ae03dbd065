/* orch — the command line. */
#include "orchestrator/cli/cli.h"

#define ORCH_VERSION "0.1.0"

static const struct orch_command commands[] = {
	{"config", cmd_config, "Parse, resolve and render compose file in canonical format"},
	{"version", cmd_version, "Show the orch version information"},
	{"images", cmd_images, "List images"},
	{"image", cmd_image, "Manage images"},
	{"pull", cmd_pull, "Pull service images"},
	{"push", cmd_push, "Push service images"},
	{"login", cmd_login, "Log in to a registry"},
	{"logout", cmd_logout, "Log out from a registry"},
	{"volume", cmd_volume, "Manage volumes"},
	{"volumes", cmd_volumes, "List volumes of the project"},
	{"up", cmd_up, "Create and start containers"},
	{"create", cmd_create, "Creates containers for a service"},
	{"down", cmd_down, "Stop and remove containers, networks"},
	{"ps", cmd_ps, "List containers"},
	{"logs", cmd_logs, "View output from containers"},
	{"attach", cmd_attach, "Attach local standard input, output, and error streams to a service's running container"},
	{"exec", cmd_exec, "Execute a command in a running container"},
	{"run", cmd_run, "Run a one-off command on a service"},
	{"start", cmd_start, "Start services"},
	{"stop", cmd_stop, "Stop services"},
	{"restart", cmd_restart, "Restart service containers"},
	{"kill", cmd_kill, "Force stop service containers"},
	{"pause", cmd_pause, "Pause services"},
	{"wait", cmd_wait, "Block until the first service container stops"},
	{"scale", cmd_scale, "Scale services"},
	{"cp", cmd_cp, "Copy files/folders between a service container and the local filesystem"},
	{"commit", cmd_commit, "Create a new image from a service container's changes"},
	{"export", cmd_export, "Export a service container's filesystem as a tar archive"},
	{"unpause", cmd_unpause, "Unpause services"},
	{"rm", cmd_rm, "Removes stopped service containers"},
	{"top", cmd_top, "Display the running processes"},
	{"port", cmd_port, "Print the public port for a port binding"},
	{"events", cmd_events, "Receive real time events from containers"},
	{"stats", cmd_stats, "Display a live stream of container resource "
			     "usage statistics"},
	{"ls", cmd_ls, "List running compose projects"},
	{"__supervise", supervisor_program, NULL},
	{"network", cmd_network, "Manage networks"},
	{"links", cmd_links, "Show who may connect to whom (link-only)"},
	{"kube", cmd_kube, "Write the project as Kubernetes manifests"},
	{"build", cmd_build, "Build or rebuild services"},
	{"watch", cmd_watch, "Watch the build context and rebuild or sync "
			     "containers on changes"},
};

int cmd_version(int argc, char **argv)
{
	/* As compose's: --short, --format pretty|json. */
	static const char use[] = "[--short] [--format pretty|json]";
	static const struct option lopts[] = {
		{"short", no_argument, NULL, 's'},
		{"format", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool shrt = false, json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", lopts, NULL)) != -1) {
		if (c == 's')
			shrt = true;
		else if (c == 'f' && (streq(optarg, "json") ||
				      streq(optarg, "pretty")))
			json = streq(optarg, "json");
		else if (c == 'h') {
			printf("Usage: orch version %s\n", use);
			return 0;
		} else
			return cli_usage("version", use);
	}
	if (optind < argc)
		return cli_usage("version", use);
	if (json)
		printf("{\"version\":\"%s\"}\n", ORCH_VERSION);
	else if (shrt)
		printf("%s\n", ORCH_VERSION);
	else
		printf("orch version %s\n", ORCH_VERSION);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: orch [OPTIONS] COMMAND\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].summary)
			fprintf(f, "  %-10s %s\n", commands[i].name,
				commands[i].summary);
}

int main(int argc, char **argv)
{
	log_init("orch");
	/* Global options (-f, -p, ...) come before the command. */
	int k = cli_parse_globals(argc, argv);
	if (k < 0)
		return 2;
	argc -= k - 1;
	argv += k - 1;
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (streq(argv[1], "--help") || streq(argv[1], "-h") ||
	    (streq(argv[1], "help") && argc == 2)) {
		usage(stdout);
		return 0;
	}
	/* As docker compose: "--version" and "-v" are "version". */
	if (streq(argv[1], "--version") || streq(argv[1], "-v"))
		return cmd_version(argc - 1, argv + 1);
	/* "orch help COMMAND [SUB]" is "orch COMMAND [SUB] --help". */
	bool help = streq(argv[1], "help");
	const char *name = help ? argv[2] : argv[1];
	const struct orch_command *cmd = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (streq(name, commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "orch: unknown command \"%s\"\n", name);
		usage(stderr);
		return 2;
	}
	struct orch_err e = {0};
	if (!help && !streq(cmd->name, "version") &&
	    cli_rootless_setup(&e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	if (!help) {
		int rc = cmd->run(argc - 1, argv + 1);
		/* A user's last command out, with no project left, leaves
		 * nothing behind: no holder, no cgroup. */
		cli_rootless_done();
		return rc;
	}
	char *hargv[4] = {argv[2], argc > 3 ? argv[3] : "--help",
			  argc > 3 ? "--help" : NULL, NULL};
	return cmd->run(argc > 3 ? 3 : 2, hargv);
}
