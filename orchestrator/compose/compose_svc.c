/* One service's mapping -> struct service: every service key of the
 * Compose Specification, typed, with errors naming key and value. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>
#include <stddef.h>
#include <sys/socket.h>

void *arena_grow(struct arena *a, void *arr, size_t n, size_t elem)
{
	if (n && (n & (n - 1)))
		return arr;
	void *v = arena_alloc(a, elem * (n ? 2 * n : 4));
	if (n)
		memcpy(v, arr, elem * n);
	return v;
}

bool want_seq(struct cctx *c, const struct ynode *n)
{
	if (n->kind == Y_SEQ)
		return true;
	cerr(c, n, "must be a list, not %s", ykind_name(n));
	return false;
}

const char *shown_value(const char *s)
{
	static char buf[80];
	if (strlen(s) < 60)
		return s;
	snprintf(buf, sizeof(buf), "%.56s...", s);
	return buf;
}

/* ---- command lines: shell-style splitting ------------------------------- */

static char **shell_split(struct cctx *c, const struct ynode *n)
{
	const char *s = n->s;
	struct strbuf word;
	char **out = NULL;
	size_t count = 0;
	sb_init(&word);
	bool in_word = false;
	while (*s) {
		char ch = *s;
		if (isspace((unsigned char)ch)) {
			if (in_word) {
				*PUSH(c->a, out, count) =
				    arena_strndup(c->a, word.buf, word.len);
				word.len = 0;
				in_word = false;
			}
			s++;
			continue;
		}
		in_word = true;
		if (ch == '\\' && s[1]) {
			sb_add(&word, s + 1, 1);
			s += 2;
		} else if (ch == '\'') {
			const char *e = strchr(s + 1, '\'');
			if (!e)
				goto unterminated;
			sb_add(&word, s + 1, (size_t)(e - s - 1));
			s = e + 1;
		} else if (ch == '"') {
			s++;
			while (*s && *s != '"') {
				if (*s == '\\' && s[1] &&
				    strchr("\"\\$`", s[1]))
					s++;
				sb_add(&word, s++, 1);
			}
			if (!*s)
				goto unterminated;
			s++;
		} else {
			sb_add(&word, s++, 1);
		}
	}
	if (in_word)
		*PUSH(c->a, out, count) =
		    arena_strndup(c->a, word.buf, word.len);
	sb_free(&word);
	out = arena_grow(c->a, out, count, sizeof(*out));
	if (!out)
		out = arena_new_array(c->a, char *, 1);
	out[count] = NULL;
	return out;
unterminated:
	sb_free(&word);
	cerr(c, n, "unterminated quote in \"%s\"", shown_value(n->s));
	return NULL;
}

static char **command_of(struct cctx *c, const struct ynode *n)
{
	if (n->kind == Y_SCALAR)
		return shell_split(c, n);
	return c_strlist(c, n, false);
}

/* ---- small keys with a check of their own
 * ------------------------------------- */

static void svc_image(struct cctx *c, struct service *s, const struct ynode *n)
{
	s->image = c_str(c, n);
	if (s->image && (!*s->image || strpbrk(s->image, " \t\n"))) {
		cerr(c, n, "invalid image reference \"%s\"",
		     shown_value(s->image));
		s->image = NULL;
	}
}

static void svc_scale(struct cctx *c, struct service *s, const struct ynode *n)
{
	c_int(c, n, 0, ORCH_MAX_REPLICAS, &s->scale);
}

/* One hook, {command, user, privileged, working_dir, environment}; false
 * after reporting what is wrong. */
static bool hook_of(struct cctx *c, const struct ynode *h, struct m_hook *k)
{
	static const char *const keys[] = {"command", "user", "privileged",
					   "working_dir", "environment"};
	if (!c_map(c, h))
		return false;
	c_known_keys(c, h, keys, ARRAY_SIZE(keys));
	k->pos = h->pos;
	const struct ynode *v;
	if ((v = ymap_get(h, "command")))
		k->command = command_of(c, v);
	if (!k->command || !k->command[0]) {
		cerr(c, v ? v : h, "a hook needs a command");
		return false;
	}
	if ((v = ymap_get(h, "user")))
		k->user = c_str(c, v);
	if ((v = ymap_get(h, "working_dir"))) {
		k->working_dir = c_str(c, v);
		if (k->working_dir && k->working_dir[0] != '/')
			cerr(c, v, "working_dir must be an absolute path");
	}
	if ((v = ymap_get(h, "privileged")))
		c_bool(c, v, &k->privileged);
	if ((v = ymap_get(h, "environment")))
		c_kvlist(c, v, KV_ENV, &k->environment);
	return true;
}

/* post_start, pre_stop, pre_start: lists of hooks. */
static void hooks_of(struct cctx *c, const struct ynode *n, struct m_hook **out,
		     size_t *count)
{
	if (n->kind == Y_NULL)
		return;
	if (n->kind != Y_SEQ) {
		cerr(c, n, "must be a list of hooks, not %s", ykind_name(n));
		return;
	}
	*out = arena_new_array(c->a, struct m_hook, n->n ? n->n : 1);
	for (size_t i = 0; i < n->n; i++) {
		size_t l = cpath_push(c, "[%zu]", i);
		*count += hook_of(c, n->v[i], &(*out)[*count]);
		cpath_pop(c, l);
	}
}

const char *const m_watch_actions[M_WATCH_NACTIONS] = {
    [M_WATCH_SYNC] = "sync",
    [M_WATCH_REBUILD] = "rebuild",
    [M_WATCH_SYNC_RESTART] = "sync+restart",
    [M_WATCH_RESTART] = "restart",
    [M_WATCH_SYNC_EXEC] = "sync+exec",
};

static void watch_rule(struct cctx *c, const struct ynode *it,
		       struct m_watch *w, bool *ok)
{
	static const char *const keys[] = {"path",   "action",	"target",
					   "ignore", "include", "initial_sync",
					   "exec"};
	*ok = false;
	if (!c_map(c, it))
		return;
	c_known_keys(c, it, keys, ARRAY_SIZE(keys));
	w->pos = it->pos;
	const struct ynode *v = ymap_get(it, "action");
	const char *a = v ? c_str(c, v) : NULL;
	size_t k = 0;
	while (a && k < M_WATCH_NACTIONS && !streq(a, m_watch_actions[k]))
		k++;
	if (!v) {
		cerr(c, it, "a watch rule needs an action");
		return;
	}
	if (!a || k == M_WATCH_NACTIONS) {
		cerr(c, v,
		     "unknown watch action \"%s\" (want sync, rebuild, "
		     "restart, sync+restart or sync+exec)",
		     a ? shown_value(a) : "");
		return;
	}
	w->action = (enum m_watch_action)k;
	v = ymap_get(it, "path");
	const char *p = v ? c_str(c, v) : NULL;
	if (!p || !*p) {
		cerr(c, v ? v : it, "a watch rule needs a path");
		return;
	}
	w->path = path_resolve(c->a, c->workdir, c->home, p);
	v = ymap_get(it, "target");
	if (v)
		w->target = c_str(c, v);
	bool sync = w->action == M_WATCH_SYNC ||
		    w->action == M_WATCH_SYNC_RESTART ||
		    w->action == M_WATCH_SYNC_EXEC;
	if (sync && (!w->target || w->target[0] != '/')) {
		cerr(c, v ? v : it,
		     "a %s rule needs an absolute target in the container",
		     m_watch_actions[k]);
		return;
	}
	if ((v = ymap_get(it, "ignore")))
		w->ignore = c_strlist(c, v, false);
	if ((v = ymap_get(it, "include")))
		w->include = c_strlist(c, v, true);
	if ((v = ymap_get(it, "initial_sync")))
		c_bool(c, v, &w->initial_sync);
	const struct ynode *x = ymap_get(it, "exec");
	if (x) {
		size_t l = cpath_push(c, "exec");
		w->exec = arena_new_array(c->a, struct m_hook, 1);
		bool good = hook_of(c, x, w->exec);
		cpath_pop(c, l);
		if (!good)
			return;
	}
	if ((w->action == M_WATCH_SYNC_EXEC) != (x != NULL)) {
		cerr(c, x ? x : it,
		     x ? "exec is for a sync+exec rule"
		       : "a sync+exec rule needs exec: {command: ...}");
		return;
	}
	*ok = true;
}

static void svc_develop(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	static const char *const keys[] = {"watch"};
	if (!c_map(c, n))
		return;
	c_known_keys(c, n, keys, ARRAY_SIZE(keys));
	const struct ynode *w = ymap_get(n, "watch");
	if (!w || w->kind == Y_NULL)
		return;
	size_t l0 = cpath_push(c, "watch");
	if (w->kind != Y_SEQ) {
		cerr(c, w, "watch must be a list of rules, not %s",
		     ykind_name(w));
		cpath_pop(c, l0);
		return;
	}
	s->watch = arena_new_array(c->a, struct m_watch, w->n ? w->n : 1);
	for (size_t i = 0; i < w->n; i++) {
		size_t l = cpath_push(c, "[%zu]", i);
		bool ok;
		watch_rule(c, w->v[i], &s->watch[s->n_watch], &ok);
		s->n_watch += ok;
		cpath_pop(c, l);
	}
	cpath_pop(c, l0);
}

static void svc_post_start(struct cctx *c, struct service *s,
			   const struct ynode *n)
{
	hooks_of(c, n, &s->post_start, &s->n_post_start);
}

static void svc_pre_stop(struct cctx *c, struct service *s,
			 const struct ynode *n)
{
	hooks_of(c, n, &s->pre_stop, &s->n_pre_stop);
}

static void svc_pre_start(struct cctx *c, struct service *s,
			  const struct ynode *n)
{
	hooks_of(c, n, &s->pre_start, &s->n_pre_start);
}

static void svc_command(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	s->command = command_of(c, n);
}

static void svc_entrypoint(struct cctx *c, struct service *s,
			   const struct ynode *n)
{
	s->entrypoint = command_of(c, n);
}

static void svc_network_mode(struct cctx *c, struct service *s,
			     const struct ynode *n)
{
	const char *v = c_str(c, n);
	if (!v)
		return;
	if (!streq(v, "none") && !streq(v, "host") && !streq(v, "bridge") &&
	    !(startswith(v, "service:") && v[8]) &&
	    !(startswith(v, "container:") && v[10])) {
		cerr(c, n,
		     "invalid network_mode \"%s\" (want none, host, bridge, "
		     "service:NAME or container:NAME)",
		     shown_value(v));
		return;
	}
	s->network_mode = (char *)v;
}

static void svc_stop_signal(struct cctx *c, struct service *s,
			    const struct ynode *n)
{
	const char *v = c_str(c, n);
	if (v && parse_signal(v) < 0) {
		cerr(c, n, "unknown signal \"%s\"", shown_value(v));
		return;
	}
	s->stop_signal = (char *)v;
}

static void svc_container_name(struct cctx *c, struct service *s,
			       const struct ynode *n)
{
	const char *v = c_str(c, n);
	if (v && !volume_name_ok(v)) {
		cerr(c, n,
		     "invalid container name \"%s\" (want "
		     "[a-zA-Z0-9][a-zA-Z0-9_.-]*)",
		     shown_value(v));
		return;
	}
	s->container_name = (char *)v;
}

/* A profile is a name: an empty or odd one ("", "-x", "a b") would keep
 * its service out of every run without a word. */
static void svc_profiles(struct cctx *c, struct service *s,
			 const struct ynode *n)
{
	char **v = c_strlist(c, n, false);
	for (size_t i = 0; v && v[i] && n->kind == Y_SEQ; i++) {
		if (volume_name_ok(v[i]))
			continue;
		cerr_item(c, n, i,
			  "invalid profile name \"%s\" (want "
			  "[a-zA-Z0-9][a-zA-Z0-9_.-]*)",
			  shown_value(v[i]));
		return;
	}
	s->profiles = v;
}

static void svc_devices(struct cctx *c, struct service *s,
			const struct ynode *n)
{
	if (!want_seq(c, n))
		return;
	s->devices = arena_new_array(c->a, char *, n->n + 1);
	size_t o = 0;
	EACH_ITEM(c, n, i, l)
	{
		const struct ynode *it = n->v[i];
		if (it->kind == Y_SCALAR) {
			s->devices[o++] = it->s;
		} else if (c_map(c, it)) {
			static const char *const keys[] = {"source", "target",
							   "permissions"};
			c_known_keys(c, it, keys, ARRAY_SIZE(keys));
			const struct ynode *src = ymap_get(it, "source"),
					   *dst = ymap_get(it, "target"),
					   *perm = ymap_get(it, "permissions");
			if (!src || src->kind != Y_SCALAR)
				cerr(c, it, "source is required");
			else
				s->devices[o++] = arena_printf(
				    c->a, "%s:%s:%s", src->s,
				    dst && dst->kind == Y_SCALAR ? dst->s
								 : src->s,
				    perm && perm->kind == Y_SCALAR ? perm->s
								   : "rwm");
		}
		cpath_pop(c, l);
	}
}

/* ---- the key table
 * ----------------------------------------------------------- */

enum kkind {
	K_FN,
	K_STR,
	K_LIST,
	K_LIST_OR_STR,
	K_BOOL,
	K_BYTES,
	K_BYTES_M1,
	K_INT,
	K_INT_M1,
	K_DOUBLE,
	K_DURATION,
	K_LABELS,
	K_OPTS,
	K_HOSTS,
	K_LATER,
	K_IGNORED,
};

struct svc_key {
	const char *name;
	enum kkind kind;
	size_t off;
	void (*fn)(struct cctx *c, struct service *s, const struct ynode *n);
};

#define F(name, fn)                                                            \
	{                                                                      \
#name, K_FN, 0, fn                                             \
	}
#define T(name, kind)                                                          \
	{                                                                      \
#name, kind, offsetof(struct service, name), NULL              \
	}
#define IGN(name)                                                              \
	{                                                                      \
#name, K_IGNORED, 0, NULL                                      \
	}

/* A provider service is run by a plugin of docker compose's (a model
 * runner, a cloud service), not as a container: it cannot run here, which
 * is said once, here (validate_project does not add that it has no
 * image). */
static void svc_provider(struct cctx *c, struct service *s,
			 const struct ynode *n)
{
	(void)s;
	cerr(c, ymap_key(n, "type") ? ymap_get(n, "type") : n,
	     "provider services are not supported: orch runs containers only");
}

static void svc_mem_swappiness(struct cctx *c, struct service *s,
			       const struct ynode *n)
{
	c_int(c, n, 0, 100, &s->mem_swappiness);
}

static void svc_mac_address(struct cctx *c, struct service *s,
			    const struct ynode *n)
{
	s->mac_address = c_mac(c, n);
}

static void svc_attach(struct cctx *c, struct service *s,
		       const struct ynode *n)
{
	bool on = true;
	if (c_bool(c, n, &on))
		s->no_attach = !on;
}

static const struct svc_key svc_keys[] = {
    T(annotations, K_LABELS),
    F(attach, svc_attach),
    F(blkio_config, svc_blkio),
    F(build, svc_build),
    T(cap_add, K_LIST),
    T(cap_drop, K_LIST),
    T(cgroup, K_STR),
    T(cgroup_parent, K_STR),
    F(command, svc_command),
    F(configs, svc_configs),
    F(container_name, svc_container_name),
    IGN(cpu_count),
    IGN(cpu_percent),
    T(cpu_period, K_INT),
    T(cpu_quota, K_INT),
    IGN(cpu_rt_period),
    IGN(cpu_rt_runtime),
    T(cpu_shares, K_INT),
    T(cpus, K_DOUBLE),
    T(cpuset, K_STR),
    IGN(credential_spec),
    F(depends_on, svc_depends_on),
    F(deploy, svc_deploy),
    F(develop, svc_develop),
    T(device_cgroup_rules, K_LIST),
    F(devices, svc_devices),
    T(dns, K_LIST_OR_STR),
    T(dns_opt, K_LIST),
    T(dns_search, K_LIST_OR_STR),
    T(domainname, K_STR),
    F(entrypoint, svc_entrypoint),
    {"env_file", K_LATER, 0, NULL},
    {"environment", K_LATER, 0, NULL},
    F(expose, svc_expose),
    {"extends", K_LATER, 0, NULL},
    T(external_links, K_LIST),
    T(extra_hosts, K_HOSTS),
    IGN(gpus),
    T(group_add, K_LIST),
    F(healthcheck, svc_healthcheck),
    T(hostname, K_STR),
    F(image, svc_image),
    T(init, K_BOOL),
    T(ipc, K_STR),
    IGN(isolation),
    {"label_file", K_LATER, 0, NULL},
    T(labels, K_LABELS),
    T(links, K_LIST),
    F(logging, svc_logging),
    F(mac_address, svc_mac_address),
    T(mem_limit, K_BYTES),
    T(mem_reservation, K_BYTES),
    F(mem_swappiness, svc_mem_swappiness),
    T(memswap_limit, K_BYTES_M1),
    F(network_mode, svc_network_mode),
    F(networks, svc_networks),
    T(oom_kill_disable, K_BOOL),
    T(oom_score_adj, K_INT),
    T(pid, K_STR),
    T(pids_limit, K_INT_M1),
    T(platform, K_STR),
    F(ports, svc_ports),
    F(post_start, svc_post_start),
    F(pre_start, svc_pre_start),
    F(pre_stop, svc_pre_stop),
    T(privileged, K_BOOL),
    F(profiles, svc_profiles),
    F(provider, svc_provider),
    T(pull_policy, K_STR),
    {"pull_refresh_after", K_DURATION,
     offsetof(struct service, pull_refresh_after_ns), NULL},
    T(read_only, K_BOOL),
    F(restart, svc_restart),
    IGN(runtime),
    F(scale, svc_scale),
    F(secrets, svc_secrets),
    T(security_opt, K_LIST),
    T(shm_size, K_BYTES),
    T(stdin_open, K_BOOL),
    {"stop_grace_period", K_DURATION,
     offsetof(struct service, stop_grace_period_ns), NULL},
    F(stop_signal, svc_stop_signal),
    IGN(storage_opt),
    T(sysctls, K_OPTS),
    T(tmpfs, K_LIST_OR_STR),
    T(tty, K_BOOL),
    F(ulimits, svc_ulimits),
    IGN(use_api_socket),
    T(user, K_STR),
    T(userns_mode, K_STR),
    T(uts, K_STR),
    F(volumes, svc_volumes),
    T(volumes_from, K_LIST),
    T(working_dir, K_STR),
};

static const char *key_names[ARRAY_SIZE(svc_keys)];

static const struct svc_key *svc_key_find(const char *name)
{
	size_t lo = 0, hi = ARRAY_SIZE(svc_keys);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(name, svc_keys[mid].name);
		if (!r)
			return &svc_keys[mid];
		if (r < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static void apply_key(struct cctx *c, struct service *s,
		      const struct svc_key *k, const struct ynode *v)
{
	void *dst = (char *)s + k->off;
	switch (k->kind) {
	case K_FN:
		k->fn(c, s, v);
		break;
	case K_STR:
		*(char **)dst = c_str(c, v);
		break;
	case K_LIST:
		*(char ***)dst = c_strlist(c, v, false);
		break;
	case K_LIST_OR_STR:
		*(char ***)dst = c_strlist(c, v, true);
		break;
	case K_BOOL:
		c_bool(c, v, dst);
		break;
	case K_BYTES:
		c_bytes(c, v, false, dst);
		break;
	case K_BYTES_M1:
		c_bytes(c, v, true, dst);
		break;
	case K_INT:
		c_int(c, v, INT32_MIN, INT64_MAX, dst);
		break;
	case K_INT_M1:
		c_int(c, v, -1, INT64_MAX, dst);
		break;
	case K_DOUBLE:
		c_double(c, v, dst);
		break;
	case K_DURATION:
		c_duration(c, v, dst);
		break;
	case K_LABELS:
		c_kvlist(c, v, KV_LABELS, dst);
		break;
	case K_OPTS:
		c_kvlist(c, v, KV_OPTS, dst);
		break;
	case K_HOSTS:
		c_kvlist(c, v, KV_HOSTS, dst);
		break;
	case K_LATER:
	case K_IGNORED:
		break;
	}
}

/* env_file entries in order, then environment: over them. */
static void service_environment(struct cctx *c, struct service *s,
				const struct ynode *n)
{
	const struct ynode *ef = ymap_get(n, "env_file");
	if (ef && ef->kind != Y_NULL) {
		size_t l0 = cpath_push(c, "env_file");
		const struct ynode *one[1] = {ef};
		const struct ynode *const *items =
		    ef->kind == Y_SEQ ? (const struct ynode *const *)ef->v
				      : one;
		size_t count = ef->kind == Y_SEQ ? ef->n : 1;
		s->env_files =
		    arena_new_array(c->a, struct m_env_file, count ? count : 1);
		for (size_t i = 0; i < count; i++) {
			const struct ynode *it = items[i];
			const struct ynode *pathn = it;
			bool required = true;
			const char *format = NULL;
			if (it->kind == Y_MAP) {
				static const char *const keys[] = {
				    "path", "required", "format"};
				c_known_keys(c, it, keys, ARRAY_SIZE(keys));
				pathn = ymap_get(it, "path");
				const struct ynode *r =
				    ymap_get(it, "required");
				if (r)
					c_bool(c, r, &required);
				const struct ynode *f = ymap_get(it, "format");
				if (f)
					format = c_str(c, f);
				if (format && !streq(format, "raw") &&
				    !streq(format, ".env")) {
					cerr(c, f,
					     "unsupported env_file format "
					     "\"%s\" (want raw or .env)",
					     format);
					continue;
				}
				if (!pathn) {
					cerr(c, it, "path is required");
					continue;
				}
			}
			const char *path = c_str(c, pathn);
			if (!path)
				continue;
			char *abs =
			    path_resolve(c->a, c->workdir, c->home, path);
			s->env_files[s->n_env_files++] = (struct m_env_file){
			    abs, required,
			    format ? arena_strdup(c->a, format) : NULL};
			_cleanup_free_ char *text = NULL;
			struct orch_err e = {0};
			if (read_regular_file(abs, &text, NULL, &e) < 0) {
				if (required && c->defer_env_files &&
				    !s->env_file_error) {
					s->env_file_error = arena_printf(
					    c->a, "%s: env file: %s",
					    c->path.buf, e.msg);
					s->env_file_error_pos = pathn->pos;
				} else if (required || e.code != ENOENT) {
					cerr(c, pathn, "env file: %s", e.msg);
				}
				continue;
			}
			if (format && streq(format, "raw"))
				envfile_parse_raw(c->a, abs, text, &s->environment,
						  c->d);
			else
				envfile_parse(c->a, abs, text, c->env,
					      &s->environment, c->d);
		}
		cpath_pop(c, l0);
	}
	const struct ynode *env = ymap_get(n, "environment");
	if (env) {
		size_t l = cpath_push(c, "environment");
		c_kvlist(c, env, KV_ENV, &s->environment);
		cpath_pop(c, l);
	}
}

/* label_file: files of KEY=VALUE lines (an env file's syntax), under what
 * labels says. */
static void service_label_files(struct cctx *c, struct service *s,
				const struct ynode *n)
{
	const struct ynode *lf = ymap_get(n, "label_file");
	if (!lf || lf->kind == Y_NULL)
		return;
	size_t l0 = cpath_push(c, "label_file");
	const struct ynode *one[1] = {lf};
	const struct ynode *const *items =
	    lf->kind == Y_SEQ ? (const struct ynode *const *)lf->v : one;
	size_t count = lf->kind == Y_SEQ ? lf->n : 1;
	struct m_kvlist found = {0};
	for (size_t i = 0; i < count; i++) {
		const char *path = c_str(c, items[i]);
		if (!path)
			continue;
		char *abs = path_resolve(c->a, c->workdir, c->home, path);
		_cleanup_free_ char *text = NULL;
		struct orch_err e = {0};
		if (read_regular_file(abs, &text, NULL, &e) < 0) {
			cerr(c, items[i], "label file: %s", e.msg);
			continue;
		}
		envfile_parse(c->a, abs, text, c->env, &found, c->d);
	}
	for (size_t i = 0; i < found.n; i++)
		if (!kv_get(&s->labels, found.v[i].key))
			kv_set(c->a, &s->labels, found.v[i].key,
			       found.v[i].value, &found.v[i].pos);
	cpath_pop(c, l0);
}

static int svcnet_cmp(const void *a, const void *b)
{
	return strcmp(((const struct m_svc_net *)a)->name,
		      ((const struct m_svc_net *)b)->name);
}

static int dep_cmp(const void *a, const void *b)
{
	return strcmp(((const struct m_dep *)a)->service,
		      ((const struct m_dep *)b)->service);
}

void convert_service(struct cctx *c, const struct ynode *name,
		     const struct ynode *n, struct service *s)
{
	if (!key_names[0])
		for (size_t i = 0; i < ARRAY_SIZE(svc_keys); i++)
			key_names[i] = svc_keys[i].name;
	s->name = name->s;
	s->pos = name->pos;
	s->scale = s->mem_limit = s->memswap_limit = s->mem_reservation =
	    s->shm_size = s->cpu_shares = s->pids_limit = s->oom_score_adj =
		s->cpu_period = s->cpu_quota = s->stop_grace_period_ns =
		    s->mem_swappiness = s->blkio.weight =
		    s->pull_refresh_after_ns = M_UNSET;
	s->cpus = -1;
	s->healthcheck.interval_ns = s->healthcheck.timeout_ns =
	    s->healthcheck.start_period_ns = s->healthcheck.start_interval_ns =
		s->healthcheck.retries = M_UNSET;
	s->deploy.replicas = M_UNSET;
	s->deploy.limits = s->deploy.reservations =
	    (struct m_resources){-1, M_UNSET, M_UNSET};
	s->deploy.restart_policy.delay_ns = s->deploy.restart_policy.window_ns =
	    s->deploy.restart_policy.max_attempts = M_UNSET;
	s->restart.max_retries = M_UNSET;
	s->build.shm_size = M_UNSET;
	if (n->kind != Y_MAP) {
		cerr(c, n->kind == Y_NULL ? name : n,
		     "a service must be a mapping, not %s", ykind_name(n));
		return;
	}
	s->keys = arena_new_array(c->a, struct m_keypos, n->n ? n->n : 1);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->k[i];
		s->keys[s->n_keys++] = (struct m_keypos){k->s, k->pos};
		if (startswith(k->s, "x-"))
			continue;
		const struct svc_key *key = svc_key_find(k->s);
		if (!key) {
			const char *near = did_you_mean(k->s, key_names,
							ARRAY_SIZE(key_names));
			if (near)
				cerr(
				    c, k,
				    "unknown key \"%s\" (did you mean \"%s\"?)",
				    k->s, near);
			else
				cerr(c, k, "unknown key \"%s\"", k->s);
			continue;
		}
		if (key->kind == K_IGNORED) {
			diag_add(c->d, M_WARNING, &k->pos,
				 "%s: %s is not supported and is ignored",
				 c->path.buf, k->s);
			continue;
		}
		size_t l = cpath_push(c, "%s", k->s);
		apply_key(c, s, key, n->v[i]);
		cpath_pop(c, l);
	}
	service_environment(c, s, n);
	service_label_files(c, s, n);
	if (s->network_mode && s->n_networks) {
		const struct ynode *k = ymap_key(n, "networks");
		cerr(c, k, "network_mode and networks cannot be used together");
	}
	if (!s->network_mode && !s->n_networks) {
		s->networks = arena_new_array(c->a, struct m_svc_net, 1);
		s->networks[0] = (struct m_svc_net){
		    .name = "default", .pos = s->pos, .priority = M_UNSET};
		s->n_networks = 1;
	}
	if (s->n_networks > 1)
		qsort(s->networks, s->n_networks, sizeof(*s->networks),
		      svcnet_cmp);
	if (s->n_depends_on > 1)
		qsort(s->depends_on, s->n_depends_on, sizeof(*s->depends_on),
		      dep_cmp);
}
