/* The link-only policy of a project: which service may open connections
 * to which, on which network (links and depends_on, or every pair of an
 * enable_icc network, or of every network when the file asks for
 * compose's open networks), and the warning `up` gives when a service
 * names another one that it is not linked to, before any of its
 * connections is refused. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>

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

struct link_edge *link_edges(const struct project *m, size_t *count)
{
	struct link_edge *v = xcalloc(1, sizeof(*v));
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
				v[n++] = (struct link_edge){a->name, b->name,
							    net->key, icc};
			}
		}
	}
	*count = n;
	return v;
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

