/* orch network ls|inspect|prune: netd's networks, as docker shows them. */
#include "netd/netd.h"
#include "orchestrator/cli/cli.h"

#include <getopt.h>
#include <jansson.h>

static void network_usage(FILE *f)
{
	fprintf(f, "Usage: orch network COMMAND\n\n"
		   "Commands:\n"
		   "  ls [-q] [--project NAME]   List networks\n"
		   "  inspect NETWORK...         Display detailed information\n"
		   "  prune [-f] [--project NAME] Remove unused networks\n");
}

static int connect_or_fail(struct netd_conn **c)
{
	struct orch_err e = {0};
	if (netd_connect(c, &e) < 0) {
		fprintf(stderr, "orch: %s\n", e.msg);
		return -1;
	}
	return 0;
}

/* Options shared by ls and prune: -q/-f and --project. */
static int parse_opts(int argc, char **argv, const char *flag, bool *set,
		      const char **project)
{
	static const struct option opts[] = {
	    {"quiet", no_argument, NULL, 'q'},
	    {"force", no_argument, NULL, 'f'},
	    {"project", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "qfp:h", opts, NULL)) != -1) {
		if (c == 'p') {
			*project = optarg;
		} else if ((c == 'q' || c == 'f') && c == flag[0]) {
			*set = true;
		} else if (c == 'h') {
			network_usage(stdout);
			return 1;
		} else {
			network_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		network_usage(stderr);
		return 2;
	}
	return 0;
}

static int network_ls(int argc, char **argv)
{
	bool quiet = false;
	const char *project = NULL;
	int r = parse_opts(argc, argv, "q", &quiet, &project);
	if (r)
		return r == 1 ? 0 : r;
	struct netd_conn *c;
	if (connect_or_fail(&c) < 0)
		return 1;
	struct orch_err e = {0};
	struct netd_network *nets = NULL;
	size_t n = 0;
	r = netd_network_list(c, project, &nets, &n, &e);
	netd_close(c);
	if (r < 0) {
		fprintf(stderr, "orch: %s\n", e.msg);
		return 1;
	}
	if (!quiet)
		printf("%-14s %-30s %-8s %-18s %s\n", "NETWORK ID", "NAME",
		       "DRIVER", "SUBNET", "SCOPE");
	for (size_t i = 0; i < n; i++) {
		if (quiet)
			printf("%.12s\n", nets[i].id);
		else
			printf("%-14.12s %-30s %-8s %-18s %s\n", nets[i].id,
			       nets[i].name, "bridge",
			       *nets[i].subnet ? nets[i].subnet
					       : nets[i].subnet6,
			       "local");
	}
	netd_networks_free(nets, n);
	return 0;
}

/* The network named, or whose id starts with arg (unambiguously). */
static const struct netd_network *lookup(const struct netd_network *nets,
					 size_t n, const char *arg)
{
	const struct netd_network *hit = NULL;
	for (size_t i = 0; i < n; i++)
		if (streq(nets[i].name, arg))
			return &nets[i];
	for (size_t i = 0; i < n; i++) {
		if (!startswith(nets[i].id, arg))
			continue;
		if (hit) {
			fprintf(stderr,
				"orch: network id prefix \"%s\" is ambiguous\n",
				arg);
			return NULL;
		}
		hit = &nets[i];
	}
	if (!hit)
		fprintf(stderr, "orch: no such network: %s\n", arg);
	return hit;
}

static int network_inspect(int argc, char **argv)
{
	if (argc >= 2 && streq(argv[1], "--help")) {
		network_usage(stdout);
		return 0;
	}
	if (argc < 2 || startswith(argv[1], "-")) {
		network_usage(stderr);
		return 2;
	}
	struct netd_conn *c;
	if (connect_or_fail(&c) < 0)
		return 1;
	struct orch_err e = {0};
	struct netd_network *nets = NULL;
	size_t n = 0;
	int r = netd_network_list(c, NULL, &nets, &n, &e);
	netd_close(c);
	if (r < 0) {
		fprintf(stderr, "orch: %s\n", e.msg);
		return 1;
	}
	json_t *out = json_array();
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		const struct netd_network *net = lookup(nets, n, argv[i]);
		if (net)
			json_array_append_new(out, netd_network_to_json(net));
		else
			rc = 1;
	}
	char *text = json_dumps(out, JSON_INDENT(4));
	if (text)
		printf("%s\n", text);
	free(text);
	json_decref(out);
	netd_networks_free(nets, n);
	return rc;
}

static int network_prune(int argc, char **argv)
{
	bool force = false;
	const char *project = NULL;
	int r = parse_opts(argc, argv, "f", &force, &project);
	if (r)
		return r == 1 ? 0 : r;
	if (!force && isatty(STDIN_FILENO)) {
		printf("WARNING! This will remove all networks not used by at "
		       "least one container.\nAre you sure you want to "
		       "continue? [y/N] ");
		fflush(stdout);
		char line[16];
		if (!fgets(line, sizeof(line), stdin) ||
		    (line[0] != 'y' && line[0] != 'Y'))
			return 0;
	}
	struct netd_conn *c;
	if (connect_or_fail(&c) < 0)
		return 1;
	struct orch_err e = {0};
	_cleanup_strv_ char **removed = NULL;
	r = netd_network_prune(c, project, &removed, &e);
	netd_close(c);
	if (r < 0) {
		fprintf(stderr, "orch: %s\n", e.msg);
		return 1;
	}
	if (removed && removed[0]) {
		printf("Deleted Networks:\n");
		for (size_t i = 0; removed[i]; i++)
			printf("%s\n", removed[i]);
	}
	return 0;
}

int cmd_network(int argc, char **argv)
{
	if (argc < 2) {
		network_usage(stderr);
		return 2;
	}
	if (streq(argv[1], "ls") || streq(argv[1], "list"))
		return network_ls(argc - 1, argv + 1);
	if (streq(argv[1], "inspect"))
		return network_inspect(argc - 1, argv + 1);
	if (streq(argv[1], "prune"))
		return network_prune(argc - 1, argv + 1);
	if (streq(argv[1], "--help") || streq(argv[1], "-h")) {
		network_usage(stdout);
		return 0;
	}
	fprintf(stderr, "orch network: unknown command \"%s\"\n", argv[1]);
	network_usage(stderr);
	return 2;
}
