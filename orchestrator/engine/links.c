/* The link-only policy as a user sees it: who may open connections to
 * whom (`orch links`, as a table or a graph), and the warning `up` gives
 * when a service names another one that it is not linked to, before any
 * of its connections is refused. */
#include "orchestrator/cli/cli.h"
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>
#include <getopt.h>

bool network_icc(const struct network *n)
{
	for (size_t d = 0; d < n->driver_opts.n; d++)
		if (streq(n->driver_opts.v[d].key,
			  "com.docker.network.bridge.enable_icc"))
			return n->driver_opts.v[d].value &&
			       streq(n->driver_opts.v[d].value, "true");
	return false;
}

bool service_on(const struct service *s, const char *net_key)
{
	for (size_t k = 0; k < s->n_networks; k++)
		if (streq(s->networks[k].name, net_key))
			return true;
	return false;
}

bool link_allowed(const struct service *a, const char *b)
{
	for (size_t k = 0; k < a->n_depends_on; k++)
		if (streq(a->depends_on[k].service, b))
			return true;
	for (size_t k = 0; a->links && a->links[k]; k++) {
		size_t n = strcspn(a->links[k], ":");
		if (strlen(b) == n && strncmp(a->links[k], b, n) == 0)
			return true;
	}
	return false;
}

/* The network a and b share where link-only applies (NULL: none; when
 * they share an icc network, connections are allowed there). */
static const struct network *shared_link_only(const struct project *m,
					      const struct service *a,
					      const struct service *b)
{
	const struct network *lo = NULL;
	for (size_t i = 0; i < m->n_networks; i++) {
		const struct network *n = &m->networks[i];
		if (!service_on(a, n->key) || !service_on(b, n->key))
			continue;
		if (network_icc(n))
			return NULL;
		if (!lo)
			lo = n;
	}
	return lo;
}

bool project_open_networks(const struct project *m)
{
	const struct ynode *x = m->root ? ymap_get(m->root, "x-orch") : NULL;
	const struct ynode *v = x && x->kind == Y_MAP
				    ? ymap_get(x, "open_networks")
				    : NULL;
	bool on = false;
	return v && ybool(v, &on) == 0 && on;
}

bool pstate_open_networks(struct pstate *ps)
{
	return json_is_true(json_object_get(ps->state, "open_networks"));
}

/* ---- the warning at up ---------------------------------------------------- */

static bool host_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* Whether text names host as a host name: "db", "db:5432",
 * "postgres://db/x", not "dbx" or "my-db". */
static bool names_host(const char *text, const char *host)
{
	size_t n = strlen(host);
	for (const char *p = text; (p = strstr(p, host)); p++) {
		bool start = p == text || !host_char(p[-1]);
		bool end = !host_char(p[n]) ||
			   (p[n] == '.' && !host_char(p[n + 1]));
		if (start && end)
			return true;
	}
	return false;
}

/* Where s names host: "environment WORDPRESS_DB_HOST", "command", ... */
static char *where_named(const struct service *s, const char *host)
{
	for (size_t i = 0; i < s->environment.n; i++)
		if (s->environment.v[i].value &&
		    names_host(s->environment.v[i].value, host))
			return xasprintf("%s=%s", s->environment.v[i].key,
					 s->environment.v[i].value);
	struct {
		const char *what;
		char **v;
	} lists[] = {{"command", s->command},
		     {"entrypoint", s->entrypoint},
		     {"healthcheck", s->healthcheck.test}};
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++)
		for (size_t i = 0; lists[l].v && lists[l].v[i]; i++)
			if (names_host(lists[l].v[i], host))
				return xstrdup(lists[l].what);
	return NULL;
}

void links_warn(const struct project *m)
{
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *a = &m->services[i];
		for (size_t j = 0; j < m->n_services; j++) {
			const struct service *b = &m->services[j];
			if (i == j || link_allowed(a, b->name))
				continue;
			const struct network *n = shared_link_only(m, a, b);
			if (!n)
				continue;
			_cleanup_free_ char *where = where_named(a, b->name);
			if (!where)
				continue;
			fprintf(stderr,
				"orch: warning: service \"%s\" names service "
				"\"%s\" (%s) but is not linked to it: "
				"network \"%s\" is link-only and refuses its "
				"connections (add \"links: [%s]\" or "
				"\"depends_on\", or set enable_icc on network "
				"%s)\n",
				a->name, b->name, where, n->key, b->name,
				n->key);
		}
	}
}

/* ---- orch links ------------------------------------------------------------ */

struct edge {
	const char *from, *to, *net;
	bool icc; /* every pair of the network */
};

static struct edge *edges_of(const struct project *m, size_t *count)
{
	struct edge *v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	bool open = project_open_networks(m);
	for (size_t k = 0; k < m->n_networks; k++) {
		const struct network *net = &m->networks[k];
		bool icc = open || network_icc(net);
		for (size_t i = 0; i < m->n_services; i++) {
			const struct service *a = &m->services[i];
			if (!service_on(a, net->key))
				continue;
			for (size_t j = 0; j < m->n_services; j++) {
				const struct service *b = &m->services[j];
				if (i == j || !service_on(b, net->key) ||
				    (!icc && !link_allowed(a, b->name)))
					continue;
				v = xrealloc(v, (n + 1) * sizeof(*v));
				v[n++] = (struct edge){a->name, b->name,
						       net->key, icc};
			}
		}
	}
	*count = n;
	return v;
}

static void print_table(const struct project *m, const struct edge *v,
			size_t n)
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
static void node_id(const struct project *m, const char *net,
		    const char *svc, char out[48])
{
	size_t k = 0, i = 0;
	while (k < m->n_networks && !streq(m->networks[k].key, net))
		k++;
	while (i < m->n_services && !streq(m->services[i].name, svc))
		i++;
	snprintf(out, 48, "n%zu_s%zu", k, i);
}

static void print_graph(const struct project *m, const struct edge *v,
			size_t n, bool dot)
{
	printf(dot ? "digraph \"%s\" {\n\trankdir=LR;\n" : "flowchart LR\n",
	       m->name);
	char a[48], b[48];
	for (size_t k = 0; k < m->n_networks; k++) {
		const struct network *net = &m->networks[k];
		const char *icc = network_icc(net) ? " (enable_icc)" : "";
		if (dot)
			printf("\tsubgraph cluster_%zu {\n\t\tlabel=\"%s%s\";\n",
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
	while ((c = getopt_long(argc, argv, "h" CLI_GLOBAL_SHORTOPTS, lopts,
				NULL)) != -1) {
		int g = cli_global_opt(c, optarg);
		if (g < 0)
			return 2;
		if (g)
			continue;
		if (c == O_FORMAT && (streq(optarg, "table") ||
				      streq(optarg, "dot") ||
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
	struct edge *v = edges_of(m, &n);
	if (streq(format, "table"))
		print_table(m, v, n);
	else
		print_graph(m, v, n, streq(format, "dot"));
	free(v);
	project_free(m);
	return 0;
}
