/* Where to pull from: registry mirrors and insecure registries.
 *
 * Two sources, both optional:
 *  - $ORCH_ROOT/registries.json, in the words of docker's daemon.json:
 *      {"insecure-registries": ["host:port"],
 *       "registry-mirrors": ["https://mirror.lan"],      (for docker.io)
 *       "mirrors": {"registry.lan:5000": ["cache.lan/registry"]}}
 *  - containers-registries.conf(5), as podman users write it:
 *    /etc/containers/registries.conf and registries.conf.d/NAME.conf, or the
 *    file CONTAINERS_REGISTRIES_CONF names; its [[registry]] tables
 *    (prefix, location, insecure, blocked) and their [[registry.mirror]]
 *    (location, insecure).  Other tables and keys are not orch's concern
 *    and are passed over.
 * A pull tries the mirrors in order, then the registry itself; a push
 * goes to the registry only. */
#include "runtime/registry/registry_impl.h"

#include <ctype.h>
#include <dirent.h>

struct conf_mirror {
	char *location;
	bool insecure;
};

struct conf_registry {
	char *prefix, *location;
	bool insecure, blocked;
	struct conf_mirror *mirrors;
	size_t n_mirrors;
};

struct conf {
	struct conf_registry *regs;
	size_t n;
	char **insecure; /* host[:port] */
};

static void conf_free(struct conf *c)
{
	for (size_t i = 0; i < c->n; i++) {
		struct conf_registry *r = &c->regs[i];
		free(r->prefix);
		free(r->location);
		for (size_t m = 0; m < r->n_mirrors; m++)
			free(r->mirrors[m].location);
		free(r->mirrors);
	}
	free(c->regs);
	strv_free(c->insecure);
	memset(c, 0, sizeof(*c));
}

static struct conf_registry *conf_add(struct conf *c, const char *prefix)
{
	c->regs = xrealloc(c->regs, (c->n + 1) * sizeof(*c->regs));
	struct conf_registry *r = &c->regs[c->n++];
	memset(r, 0, sizeof(*r));
	r->prefix = prefix ? xstrdup(prefix) : NULL;
	return r;
}

static void add_mirror(struct conf_registry *r, const char *location,
		       bool insecure)
{
	r->mirrors =
	    xrealloc(r->mirrors, (r->n_mirrors + 1) * sizeof(*r->mirrors));
	r->mirrors[r->n_mirrors++] = (struct conf_mirror){
	    .location = xstrdup(location), .insecure = insecure};
}

/* "https://host:port/path/" -> "host:port/path". */
static char *location_clean(const char *v)
{
	if (startswith(v, "https://"))
		v += 8;
	else if (startswith(v, "http://"))
		v += 7;
	char *s = xstrdup(v);
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

/* ---- registries.json ----------------------------------------------------- */

static void read_json(struct conf *c)
{
	_cleanup_free_ char *p = path_join(orch_root(), "registries.json");
	json_t *j = json_load_file(p, 0, NULL);
	if (!j)
		return;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(j, "insecure-registries"), i, v)
	    if (json_is_string(v))
		strv_push(&c->insecure, json_string_value(v));
	json_t *hub = json_object_get(j, "registry-mirrors");
	if (json_array_size(hub) > 0) {
		struct conf_registry *r = conf_add(c, "docker.io");
		json_array_foreach(hub, i, v) if (json_is_string(v))
		{
			_cleanup_free_ char *l =
			    location_clean(json_string_value(v));
			add_mirror(r, l, false);
		}
	}
	const char *dom;
	json_t *list;
	json_object_foreach(json_object_get(j, "mirrors"), dom, list)
	{
		struct conf_registry *r = conf_add(c, dom);
		json_array_foreach(list, i, v) if (json_is_string(v))
		{
			_cleanup_free_ char *l =
			    location_clean(json_string_value(v));
			add_mirror(r, l, false);
		}
	}
	json_decref(j);
}

/* ---- registries.conf (the TOML it uses) --------------------------------- */

/* A TOML basic or literal string, or a bare word (true, false). */
static char *toml_value(const char *v)
{
	while (isspace((unsigned char)*v))
		v++;
	if (*v == '"' || *v == '\'') {
		char q = *v++;
		struct strbuf sb;
		sb_init(&sb);
		for (; *v && *v != q; v++) {
			if (q == '"' && *v == '\\' && v[1])
				v++;
			sb_add(&sb, v, 1);
		}
		if (!sb.len)
			sb_add(&sb, "", 0);
		return sb_steal(&sb);
	}
	size_t n = strcspn(v, " \t#\r\n");
	return xstrndup(v, n);
}

static void read_toml(struct conf *c, const char *path)
{
	_cleanup_free_ char *text = NULL;
	if (read_file(path, &text, NULL, NULL) < 0)
		return;
	struct conf_registry *reg = NULL;
	struct conf_mirror *mir = NULL;
	bool in_other = false; /* a table that is not ours */
	int depth = 0;	       /* inside a multi-line array */
	for (char *line = strtok(text, "\n"); line;
	     line = strtok(NULL, "\n")) {
		while (isspace((unsigned char)*line))
			line++;
		if (depth > 0) {
			for (const char *q = line; *q && *q != '#'; q++)
				depth += *q == '[' ? 1 : *q == ']' ? -1 : 0;
			continue;
		}
		if (!*line || *line == '#')
			continue;
		if (startswith(line, "[[registry.mirror]]")) {
			mir = NULL;
			in_other = !reg;
			if (reg) {
				add_mirror(reg, "", false);
				mir = &reg->mirrors[reg->n_mirrors - 1];
			}
			continue;
		}
		if (startswith(line, "[[registry]]")) {
			reg = conf_add(c, NULL);
			mir = NULL;
			in_other = false;
			continue;
		}
		if (*line == '[') {
			reg = NULL;
			mir = NULL;
			in_other = true;
			continue;
		}
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		char *val = eq + 1;
		while (isspace((unsigned char)*val))
			val++;
		if (*val == '[') {
			for (const char *q = val; *q && *q != '#'; q++)
				depth += *q == '[' ? 1 : *q == ']' ? -1 : 0;
			continue;
		}
		if (in_other || !reg)
			continue;
		*eq = '\0';
		_cleanup_free_ char *key = toml_value(line);
		_cleanup_free_ char *v = toml_value(val);
		bool yes = streq(v, "true");
		if (mir && streq(key, "location")) {
			free(mir->location);
			mir->location = location_clean(v);
		} else if (mir && streq(key, "insecure")) {
			mir->insecure = yes;
		} else if (mir) {
			continue;
		} else if (streq(key, "prefix")) {
			free(reg->prefix);
			reg->prefix = location_clean(v);
		} else if (streq(key, "location")) {
			free(reg->location);
			reg->location = location_clean(v);
		} else if (streq(key, "insecure")) {
			reg->insecure = yes;
		} else if (streq(key, "blocked")) {
			reg->blocked = yes;
		}
	}
}

static int conf_d_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 5 && streq(d->d_name + n - 5, ".conf");
}

static void read_conf(struct conf *c)
{
	read_json(c);
	const char *one = getenv("CONTAINERS_REGISTRIES_CONF");
	if (one && *one) {
		read_toml(c, one);
	} else {
		read_toml(c, "/etc/containers/registries.conf");
		struct dirent **names;
		const char *dir = "/etc/containers/registries.conf.d";
		int n = scandir(dir, &names, conf_d_filter, alphasort);
		for (int i = 0; i < n; i++) {
			_cleanup_free_ char *p =
			    path_join(dir, names[i]->d_name);
			read_toml(c, p);
			free(names[i]);
		}
		if (n >= 0)
			free(names);
	}
	/* A table names its registry by prefix, or else by location. */
	for (size_t i = 0; i < c->n; i++) {
		struct conf_registry *r = &c->regs[i];
		if (!r->prefix && r->location)
			r->prefix = xstrdup(r->location);
		if (r->prefix && !r->location)
			r->location = xstrdup(r->prefix);
		if (r->insecure && r->location)
			strv_push(&c->insecure, r->location);
		for (size_t m = 0; m < r->n_mirrors; m++)
			if (r->mirrors[m].insecure)
				strv_push(&c->insecure, r->mirrors[m].location);
	}
}

/* ---- matching ------------------------------------------------------------ */

/* How much of "domain/path" prefix covers (0: none): the whole of it or
 * up to a '/'. */
static size_t prefix_match(const char *prefix, const char *full)
{
	size_t n = strlen(prefix);
	if (!n || strncmp(prefix, full, n) != 0)
		return 0;
	return full[n] == '\0' || full[n] == '/' ? n : 0;
}

/* host[:port] of a location "host[:port][/path]". */
static char *location_host(const char *loc)
{
	return xstrndup(loc, strcspn(loc, "/"));
}

bool registry_insecure(const char *host)
{
	struct conf c = {.insecure = xcalloc(1, sizeof(char *))};
	read_conf(&c);
	bool found = false;
	for (size_t i = 0; c.insecure[i] && !found; i++) {
		_cleanup_free_ char *h = location_host(c.insecure[i]);
		found = streq(h, host);
	}
	conf_free(&c);
	return found;
}

static void endpoint_add(struct reg_endpoints *out, const char *location,
			 const char *rest, bool mirror)
{
	out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
	struct reg_endpoint *ep = &out->v[out->n++];
	ep->domain = location_host(location);
	const char *lpath = location + strlen(ep->domain);
	if (*lpath == '/')
		lpath++;
	ep->path = *lpath ? xasprintf("%s%s%s", lpath, *rest ? "/" : "", rest)
			  : xstrdup(rest);
	ep->mirror = mirror;
}

int registry_endpoints(const char *domain, const char *path,
		       struct reg_endpoints *out, struct orch_err *e)
{
	memset(out, 0, sizeof(*out));
	struct conf c = {.insecure = xcalloc(1, sizeof(char *))};
	read_conf(&c);
	_cleanup_free_ char *full = xasprintf("%s/%s", domain, path);
	struct conf_registry *best = NULL;
	size_t best_n = 0;
	for (size_t i = 0; i < c.n; i++) {
		size_t n = c.regs[i].prefix
			       ? prefix_match(c.regs[i].prefix, full)
			       : 0;
		if (n > best_n) {
			best = &c.regs[i];
			best_n = n;
		}
	}
	int r = 0;
	if (best && best->blocked) {
		r = err_set(e, EACCES,
			    "%s/%s: pulling from %s is blocked by the "
			    "registries configuration",
			    domain, path, best->prefix);
	} else if (best) {
		const char *rest = full + best_n;
		if (*rest == '/')
			rest++;
		for (size_t m = 0; m < best->n_mirrors; m++)
			if (*best->mirrors[m].location)
				endpoint_add(out, best->mirrors[m].location,
					     rest, true);
		endpoint_add(out, best->location, rest, false);
	} else {
		endpoint_add(out, domain, path, false);
	}
	conf_free(&c);
	return r;
}

void registry_endpoints_clear(struct reg_endpoints *eps)
{
	for (size_t i = 0; i < eps->n; i++) {
		free(eps->v[i].domain);
		free(eps->v[i].path);
	}
	free(eps->v);
	memset(eps, 0, sizeof(*eps));
}
