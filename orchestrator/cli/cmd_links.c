/* `orch links`: the link-only policy as a user sees it, who may open
 * connections to whom on which network, as a table or a graph (dot,
 * mermaid). */
#include "orchestrator/cli/cli.h"

#include <getopt.h>

static void print_table(const struct project *m, const struct link_edge *v, size_t n)
{
	printf("%-20s %-20s %-20s %s\n", "FROM", "TO", "NETWORK", "WHY");
	for (size_t i = 0; i < n; i++)
		printf("%-20s %-20s %-20s %s\n", v[i].from, v[i].to, v[i].net,
		       v[i].icc ? (project_open_networks(m) ? "open_networks"
							    : "enable_icc")
				: "links/depends_on");
	for (size_t k = 0; k < m->n_networks; k++) {
		bool any = false;
		for (size_t i = 0; i < n && !any; i++)
			any = streq(v[i].net, m->networks[k].key);
		if (!any)
			printf("%-20s %-20s %-20s %s\n", "-", "-",
			       m->networks[k].key,
			       "no connections between its services");
	}
}

/* A node's id: its network's and its service's indexes (names may hold
 * characters a graph language reads otherwise). */
static void node_id(const struct project *m, const char *net, const char *svc,
		    char out[48])
{
	size_t k = 0, i = 0;
	while (k < m->n_networks && !streq(m->networks[k].key, net))
		k++;
	while (i < m->n_services && !streq(m->services[i].name, svc))
		i++;
	snprintf(out, 48, "n%zu_s%zu", k, i);
}

static void print_graph(const struct project *m, const struct link_edge *v, size_t n,
			bool dot)
{
	printf(dot ? "digraph \"%s\" {\n\trankdir=LR;\n" : "flowchart LR\n",
	       m->name);
	char a[48], b[48];
	for (size_t k = 0; k < m->n_networks; k++) {
		const struct network *net = &m->networks[k];
		const char *icc = network_icc(net) ? " (enable_icc)" : "";
		if (dot)
			printf(
			    "\tsubgraph cluster_%zu {\n\t\tlabel=\"%s%s\";\n",
			    k, net->key, icc);
		else
			printf("\tsubgraph net%zu [\"%s%s\"]\n", k, net->key,
			       icc);
		for (size_t i = 0; i < m->n_services; i++) {
			if (!service_on(&m->services[i], net->key))
				continue;
			node_id(m, net->key, m->services[i].name, a);
			printf(dot ? "\t\t%s [label=\"%s\"];\n"
				   : "\t\t%s[\"%s\"]\n",
			       a, m->services[i].name);
		}
		printf(dot ? "\t}\n" : "\tend\n");
	}
	for (size_t i = 0; i < n; i++) {
		node_id(m, v[i].net, v[i].from, a);
		node_id(m, v[i].net, v[i].to, b);
		printf(dot ? "\t%s -> %s;\n" : "\t%s --> %s\n", a, b);
	}
	if (dot)
		printf("}\n");
}

static const char links_usage[] = "[--format table|dot|mermaid]";

int cmd_links(int argc, char **argv)
{
	enum { O_FORMAT = CLI_OPT_LOCAL };
	static const struct option lopts[] = {
	    CLI_GLOBAL_LONGOPTS,
	    {"format", required_argument, NULL, O_FORMAT},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0}};
	const char *format = "table";
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "h" CLI_GLOBAL_SHORTOPTS, lopts)) !=
	       -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		if (c == O_FORMAT &&
		    (streq(optarg, "table") || streq(optarg, "dot") ||
		     streq(optarg, "mermaid")))
			format = optarg;
		else if (c == 'h') {
			printf("Usage: orch links %s\n", links_usage);
			return 0;
		} else
			return cli_usage("links", links_usage);
	}
	if (optind != argc)
		return cli_usage("links", links_usage);
	struct project *m = NULL;
	if (cli_load(&m, false) < 0)
		return 1;
	size_t n;
	struct link_edge *v = link_edges(m, &n);
	if (streq(format, "table"))
		print_table(m, v, n);
	else
		print_graph(m, v, n, streq(format, "dot"));
	free(v);
	project_free(m);
	return 0;
}
