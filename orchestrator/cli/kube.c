/* `orch kube generate`'s model -> Kubernetes objects (pure: the model and
 * the files its configs and secrets name in, objects and diagnostics out).
 *
 * Each service becomes a Deployment (a StatefulSet when it keeps a named
 * volume with one replica, a Job when it runs once and others wait for
 * it to complete), a Service when it has ports or others reach it, and a
 * NetworkPolicy that lets in exactly whom orch's link-only policy lets in
 * (link_edges), behind a default deny for the project's pods.  Every key
 * of a service that has no faithful form is a warning at its position. */
#include "orchestrator/cli/cli.h"

#include <arpa/inet.h>
#include <ctype.h>
#include "common/lazylib/lazylib.h"
#include <sys/stat.h>

#define L_NAME "app.kubernetes.io/name"
#define L_PART "app.kubernetes.io/part-of"
#define L_MANAGED "app.kubernetes.io/managed-by"
#define WAIT_ACCOUNT "orch-wait"
/* What one ConfigMap or Secret may hold (etcd's object limit). */
#define KUBE_OBJECT_MAX (1 << 20)

struct kport {
	uint16_t port;
	enum m_proto proto;
	bool published;	    /* under ports: (reachable from outside) */
	uint16_t host_port; /* 0: any free port the host picks */
};

static const char *const kind_names[] = {"Deployment", "StatefulSet", "Job"};

struct gen {
	const struct project *m;
	const struct kube_opts *o;
	struct orch_diag *d;
	const char *ns;
	char *part; /* the project's name as a label value */
	struct kube_doc *docs;
	size_t n_docs;
	char **names; /* k8s names of the project's services, by index */
	bool *selected;
	enum workload { KIND_DEPLOYMENT, KIND_STATEFULSET, KIND_JOB } *kind;
	struct kport **ports; /* container ports, by service index */
	size_t *n_ports;
	bool need_wait_account;
	struct link_edge *edges;
	size_t n_edges;
};

/* ---- small builders ---------------------------------------------------- */

static void set_str(json_t *o, const char *k, const char *v)
{
	if (v)
		json_object_set_new(o, k, json_string(v));
}

static json_t *str_array(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *obj_child(json_t *o, const char *k)
{
	json_t *c = json_object_get(o, k);
	if (!c) {
		c = json_object();
		json_object_set_new(o, k, c);
	}
	return c;
}

static json_t *arr_child(json_t *o, const char *k)
{
	json_t *c = json_object_get(o, k);
	if (!c) {
		c = json_array();
		json_object_set_new(o, k, c);
	}
	return c;
}

/* A warning at where s wrote key: "service S KEY: why". */
static void warn(struct gen *g, const struct service *s, const char *key,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void warn(struct gen *g, const struct service *s, const char *key,
		 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *why = NULL;
	if (vasprintf(&why, fmt, ap) < 0)
		abort();
	va_end(ap);
	diag_add(g->d, M_WARNING, service_key_pos(s, key), "service %s %s: %s",
		 s->name, key, why);
}

/* A DNS-1123 label from a compose name: lower case, '_' and '.' as '-',
 * at most 63 characters; NULL when nothing is left. */
char *kube_name(const char *name)
{
	char out[64];
	size_t n = 0;
	for (const char *c = name; *c && n < 63; c++) {
		char ch = (char)tolower((unsigned char)*c);
		if (ch == '_' || ch == '.')
			ch = '-';
		if (!isalnum((unsigned char)ch) && ch != '-')
			continue;
		if (ch == '-' && n == 0)
			continue;
		out[n++] = ch;
	}
	while (n && out[n - 1] == '-')
		n--;
	if (!n)
		return NULL;
	out[n] = '\0';
	return xstrdup(out);
}

static json_t *labels_of(const struct gen *g, const char *svc)
{
	json_t *l = json_object();
	if (svc)
		set_str(l, L_NAME, svc);
	set_str(l, L_PART, g->part);
	return l;
}

/* A new object of kind, added to the output. */
static json_t *new_doc(struct gen *g, const char *api, const char *kind,
		       const char *name, const char *svc)
{
	json_t *o = json_object();
	set_str(o, "apiVersion", api);
	set_str(o, "kind", kind);
	json_t *meta = obj_child(o, "metadata");
	set_str(meta, "name", name);
	set_str(meta, "namespace", g->ns);
	json_t *l = labels_of(g, svc);
	set_str(l, L_MANAGED, "orch");
	json_object_set_new(meta, "labels", l);
	g->docs = xrealloc(g->docs, (g->n_docs + 1) * sizeof(*g->docs));
	g->docs[g->n_docs++] = (struct kube_doc){
	    .kind = xstrdup(kind), .name = xstrdup(name), .obj = o};
	return o;
}

/* Whole seconds, rounded up (at least min); a warning when that changed
 * the value. */
static int64_t seconds(struct gen *g, const struct service *s, const char *key,
		       int64_t ns, int64_t min)
{
	int64_t sec = (ns + 999999999) / 1000000000;
	if (sec < min)
		sec = min;
	if (sec * 1000000000 != ns)
		warn(g, s, key, "%lld ms is %lld s in Kubernetes",
		     (long long)(ns / 1000000), (long long)sec);
	return sec;
}

/* ---- containers ---------------------------------------------------------- */

static const char *proto_name(enum m_proto p)
{
	return p == M_PROTO_UDP ? "UDP" : p == M_PROTO_SCTP ? "SCTP" : "TCP";
}


/* The container ports of s (ports:, then expose:), each once. */
static struct kport *service_ports(struct gen *g, const struct service *s,
				   size_t *count)
{
	struct kport *v = xcalloc(1, sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct m_port *p = &s->ports[i];
		if (p->host_ip)
			warn(g, s, "ports",
			     "the host address %s of port %u has no Kubernetes "
			     "form; it is published on every address",
			     p->host_ip, p->target);
		if (p->published != p->published_end)
			warn(g, s, "ports",
			     "the host port range %u-%u of port %u has no "
			     "Kubernetes form; %u is used",
			     p->published, p->published_end, p->target,
			     p->published);
		bool seen = false;
		for (size_t j = 0; j < n && !seen; j++)
			seen = v[j].port == p->target &&
			       v[j].proto == p->protocol;
		if (seen) {
			warn(g, s, "ports",
			     "container port %u is published twice: Kubernetes "
			     "gives a port one Service port; the first is kept",
			     p->target);
			continue;
		}
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = (struct kport){p->target, p->protocol, true,
					p->published};
	}
	for (size_t i = 0; s->expose && s->expose[i]; i++) {
		/* "80", "8000-8010", "53/udp" */
		const char *e = s->expose[i];
		char *end;
		unsigned long lo = strtoul(e, &end, 10), hi = lo;
		if (*end == '-')
			hi = strtoul(end + 1, &end, 10);
		const char *proto = *end == '/' ? end + 1 : "tcp";
		if (end == e || (*end && *end != '/'))
			lo = 0;
		if (lo == 0 || lo > 65535 || hi < lo || hi > 65535) {
			warn(g, s, "expose", "\"%s\" is not a port; left out",
			     s->expose[i]);
			continue;
		}
		if (hi - lo > 100) {
			warn(g, s, "expose",
			     "the range %s is more than 100 ports; only %lu is "
			     "exposed",
			     s->expose[i], lo);
			hi = lo;
		}
		enum m_proto pr = streq(proto, "udp")	 ? M_PROTO_UDP
				  : streq(proto, "sctp") ? M_PROTO_SCTP
							 : M_PROTO_TCP;
		for (unsigned long p = lo; p <= hi; p++) {
			bool seen = false;
			for (size_t j = 0; j < n && !seen; j++)
				seen = v[j].port == p && v[j].proto == pr;
			if (seen)
				continue;
			v = xrealloc(v, (n + 1) * sizeof(*v));
			v[n++] = (struct kport){(uint16_t)p, pr, false, 0};
		}
	}
	*count = n;
	return v;
}

static json_t *port_entry(const struct kport *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "containerPort", json_integer(p->port));
	set_str(o, "protocol", proto_name(p->proto));
	return o;
}

/* "0.5" CPUs as "500m". */
static json_t *cpu_quantity(double cpus)
{
	return json_sprintf("%lldm", (long long)(cpus * 1000 + 0.5));
}

static json_t *resources_of(const struct service *s)
{
	json_t *r = json_object();
	struct m_resources lim = service_limits(s);
	struct m_resources req = s->deploy.reservations;
	if (s->mem_reservation != M_UNSET)
		req.memory = s->mem_reservation;
	if (lim.cpus > 0)
		json_object_set_new(obj_child(r, "limits"), "cpu",
				    cpu_quantity(lim.cpus));
	if (lim.memory != M_UNSET)
		json_object_set_new(obj_child(r, "limits"), "memory",
				    json_sprintf("%lld", (long long)lim.memory));
	if (req.cpus > 0)
		json_object_set_new(obj_child(r, "requests"), "cpu",
				    cpu_quantity(req.cpus));
	if (req.memory != M_UNSET)
		json_object_set_new(obj_child(r, "requests"), "memory",
				    json_sprintf("%lld", (long long)req.memory));
	return r;
}

/* A command as an exec probe or hook would run it. */
static json_t *exec_of(char *const *test)
{
	json_t *cmd = json_array();
	if (streq(test[0], "CMD-SHELL")) {
		json_array_append_new(cmd, json_string("/bin/sh"));
		json_array_append_new(cmd, json_string("-c"));
		json_array_append_new(cmd, json_string(test[1] ? test[1] : ""));
	} else
		for (size_t i = streq(test[0], "CMD") ? 1 : 0; test[i]; i++)
			json_array_append_new(cmd, json_string(test[i]));
	json_t *e = json_object();
	json_object_set_new(e, "command", cmd);
	return e;
}

#define SEC(x) ((int64_t)(x) * 1000000000)

static json_t *probe(json_t *exec, int64_t period, int64_t timeout,
		     int64_t failures)
{
	json_t *p = json_object();
	json_object_set_new(p, "exec", json_deep_copy(exec));
	json_object_set_new(p, "periodSeconds", json_integer(period));
	json_object_set_new(p, "timeoutSeconds", json_integer(timeout));
	json_object_set_new(p, "failureThreshold", json_integer(failures));
	return p;
}

/* healthcheck: readiness and liveness with compose's interval, timeout
 * and retries; a start period as a startup probe that allows as many
 * failures as fit in it (at start_interval, else interval), plus
 * retries. */
static void set_probes(struct gen *g, const struct service *s, json_t *c)
{
	const struct m_healthcheck *h = &s->healthcheck;
	if (!h->present || h->disable)
		return;
	if (!h->test) {
		warn(g, s, "healthcheck",
		     "without test: uses the image's HEALTHCHECK, which "
		     "Kubernetes does not run; no probe is made");
		return;
	}
	int64_t interval = seconds(g, s, "healthcheck",
				   h->interval_ns != M_UNSET ? h->interval_ns
							     : SEC(30),
				   1);
	int64_t timeout = seconds(
	    g, s, "healthcheck",
	    h->timeout_ns != M_UNSET ? h->timeout_ns : SEC(30), 1);
	int64_t retries = h->retries != M_UNSET && h->retries > 0 ? h->retries
								  : 3;
	json_t *exec = exec_of(h->test);
	json_object_set_new(c, "readinessProbe",
			    probe(exec, interval, timeout, retries));
	json_object_set_new(c, "livenessProbe",
			    probe(exec, interval, timeout, retries));
	if (h->start_period_ns != M_UNSET && h->start_period_ns > 0) {
		int64_t step = h->start_interval_ns != M_UNSET
				   ? h->start_interval_ns
				   : interval * SEC(1);
		int64_t every = seconds(g, s, "healthcheck", step, 1);
		int64_t start = seconds(g, s, "healthcheck",
					h->start_period_ns, 1);
		json_object_set_new(
		    c, "startupProbe",
		    probe(exec, every, timeout,
			  (start + every - 1) / every + retries));
	}
	json_decref(exec);
}

/* user: "uid[:gid]" as runAsUser/runAsGroup; names have no form. */
static void set_user(struct gen *g, const struct service *s, json_t *sc)
{
	if (!s->user)
		return;
	char *end;
	long long uid = strtoll(s->user, &end, 10);
	if (end == s->user || (*end && *end != ':') || uid < 0) {
		warn(g, s, "user",
		     "\"%s\" is not numeric: Kubernetes takes a uid; left out",
		     s->user);
		return;
	}
	json_object_set_new(sc, "runAsUser", json_integer(uid));
	if (*end == ':') {
		const char *gs = end + 1;
		long long gid = strtoll(gs, &end, 10);
		if (end == gs || *end || gid < 0)
			warn(g, s, "user",
			     "group \"%s\" is not numeric: Kubernetes takes a "
			     "gid; left out",
			     gs);
		else
			json_object_set_new(sc, "runAsGroup",
					    json_integer(gid));
	}
}

static json_t *caps_of(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++) {
		const char *c = v[i];
		if (strncasecmp(c, "CAP_", 4) == 0)
			c += 4;
		_cleanup_free_ char *up = xstrdup(c);
		for (char *p = up; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		json_array_append_new(a, json_string(up));
	}
	return a;
}

static json_t *security_of(struct gen *g, const struct service *s)
{
	json_t *sc = json_object();
	set_user(g, s, sc);
	if (s->cap_add || s->cap_drop) {
		json_t *c = obj_child(sc, "capabilities");
		if (s->cap_add)
			json_object_set_new(c, "add", caps_of(s->cap_add));
		if (s->cap_drop)
			json_object_set_new(c, "drop", caps_of(s->cap_drop));
	}
	if (s->read_only)
		json_object_set_new(sc, "readOnlyRootFilesystem", json_true());
	if (s->privileged)
		json_object_set_new(sc, "privileged", json_true());
	return sc;
}

/* ---- volumes --------------------------------------------------------------- */

/* A volume of the pod, named uniquely; returns its name. */
/* Adds a volume of the pod (kind: its source's key) named base, or
 * base-2, base-3... when another volume has that name; the same volume
 * twice (two mounts of one claim) is one.  Takes src; the name is
 * written to name (at most 63 characters). */
static void add_volume(json_t *vols, const char *base, const char *kind,
		       json_t *src, char name[64])
{
	for (int n = 1;; n++) {
		if (n == 1)
			snprintf(name, 64, "%.63s", base);
		else
			snprintf(name, 64, "%.56s-%u", base, (unsigned)n & 0xfffu);
		json_t *same = NULL, *it;
		size_t k;
		json_array_foreach(vols, k, it) if (streq(
		    json_string_value(json_object_get(it, "name")), name)) same =
		    it;
		if (same && json_equal(json_object_get(same, kind), src)) {
			json_decref(src);
			return;
		}
		if (same)
			continue;
		json_t *v = json_object();
		set_str(v, "name", name);
		json_object_set_new(v, kind, src);
		json_array_append_new(vols, v);
		return;
	}
}

static void add_mount(json_t *mounts, const char *name, const char *path,
		      bool ro, const char *sub)
{
	json_t *m = json_object();
	set_str(m, "name", name);
	set_str(m, "mountPath", path);
	if (sub)
		set_str(m, "subPath", sub);
	if (ro)
		json_object_set_new(m, "readOnly", json_true());
	json_array_append_new(mounts, m);
}

/* A tmpfs: an emptyDir in memory, its size (bytes, 0: none) the limit. */
static json_t *memory_dir(int64_t size)
{
	json_t *e = json_object();
	set_str(e, "medium", "Memory");
	if (size > 0)
		json_object_set_new(e, "sizeLimit",
				    json_sprintf("%lld", (long long)size));
	return e;
}

static void set_volumes(struct gen *g, const struct service *s, json_t *pod,
			json_t *c)
{
	json_t *vols = json_array(), *mounts = json_array();
	size_t anon = 0, host = 0, tmp = 0;
	for (size_t i = 0; i < s->n_volumes; i++) {
		const struct m_mount *mt = &s->volumes[i];
		char name[80];
		json_t *src;
		const char *kind;
		switch (mt->type) {
		case M_MOUNT_VOLUME:
			if (mt->source) {
				_cleanup_free_ char *claim =
				    kube_name(mt->source);
				snprintf(name, sizeof(name), "%s",
					 claim ? claim : "volume");
				src = json_object();
				set_str(src, "claimName", claim);
				kind = "persistentVolumeClaim";
			} else {
				snprintf(name, sizeof(name), "anon-%zu", anon++);
				src = json_object();
				kind = "emptyDir";
			}
			break;
		case M_MOUNT_TMPFS:
			snprintf(name, sizeof(name), "tmpfs-%zu", tmp++);
			src = memory_dir(mt->tmpfs_size);
			kind = "emptyDir";
			break;
		case M_MOUNT_BIND:
			if (!g->o->allow_hostpath) {
				diag_add(g->d, M_ERROR, &mt->pos,
					 "service %s: the bind mount of %s has "
					 "no portable Kubernetes form (a "
					 "hostPath ties the pod to one node's "
					 "files): put the files in an image, "
					 "a config or a volume, or pass "
					 "--allow-hostpath",
					 s->name, mt->source);
				continue;
			}
			snprintf(name, sizeof(name), "host-%zu", host++);
			src = json_object();
			set_str(src, "path", mt->source);
			if (mt->bind_create_host_path)
				set_str(src, "type", "DirectoryOrCreate");
			kind = "hostPath";
			break;
		default:
			warn(g, s, "volumes",
			     "the mount at %s has no Kubernetes form; left out",
			     mt->target);
			continue;
		}
		char vname[64];
		add_volume(vols, name, kind, src, vname);
		add_mount(mounts, vname, mt->target, mt->read_only,
			  mt->volume_subpath);
	}
	for (size_t i = 0; s->tmpfs && s->tmpfs[i]; i++) {
		char name[32];
		snprintf(name, sizeof(name), "tmpfs-%zu", tmp++);
		_cleanup_free_ char *path = xstrndup(
		    s->tmpfs[i], strcspn(s->tmpfs[i], ":"));
		char vname[64];
		add_volume(vols, name, "emptyDir", memory_dir(0), vname);
		add_mount(mounts, vname, path, false, NULL);
		if (strchr(s->tmpfs[i], ':'))
			warn(g, s, "tmpfs",
			     "the options of %s have no Kubernetes form",
			     path);
	}
	/* configs and secrets: the object's one key, mounted as one file. */
	struct {
		const struct m_file_ref *v;
		size_t n;
		const char *what, *prefix, *src, *ref_key;
	} files[] = {{s->configs, s->n_configs, "configs", "config",
		      "configMap", "name"},
		     {s->secrets, s->n_secrets, "secrets", "secret", "secret",
		      "secretName"}};
	for (size_t f = 0; f < ARRAY_SIZE(files); f++)
		for (size_t i = 0; i < files[f].n; i++) {
			const struct m_file_ref *r = &files[f].v[i];
			_cleanup_free_ char *obj = kube_name(r->source);
			if (!obj)
				continue;
			char name[80];
			snprintf(name, sizeof(name), "%s-%s", files[f].prefix,
				 obj);
			json_t *src = json_object();
			set_str(src, files[f].ref_key, obj);
			if (r->mode != M_UNSET)
				json_object_set_new(src, "defaultMode",
						    json_integer(r->mode));
			if (r->uid || r->gid)
				warn(g, s, files[f].what,
				     "the owner of %s has no Kubernetes form",
				     r->source);
			char vname[64];
			add_volume(vols, name, files[f].src, src, vname);
			_cleanup_free_ char *target =
			    r->target && r->target[0] == '/'
				? xstrdup(r->target)
			    : f == 0 ? xasprintf("/%s", r->target ? r->target
								  : r->source)
				     : xasprintf("/run/secrets/%s",
						 r->target ? r->target
							   : r->source);
			add_mount(mounts, vname, target, true, r->source);
		}
	if (json_array_size(vols))
		json_object_set(pod, "volumes", vols);
	if (json_array_size(mounts))
		json_object_set(c, "volumeMounts", mounts);
	json_decref(vols);
	json_decref(mounts);
}

/* ---- keys without a faithful form ----------------------------------------- */

/* The service keys this file maps (or warns about where it maps them);
 * any other key a service gives is said to have no Kubernetes form. */
static const char *const mapped_keys[] = {
    "image",	    "build",	      "command",      "entrypoint",
    "environment",  "env_file",	      "working_dir",  "user",
    "cap_add",	    "cap_drop",	      "read_only",    "privileged",
    "sysctls",	    "tty",	      "stdin_open",   "stop_grace_period",
    "mem_limit",    "mem_reservation", "cpus",	      "pids_limit",
    "deploy",	    "scale",	      "healthcheck",  "ports",
    "expose",	    "volumes",	      "tmpfs",	      "configs",
    "secrets",	    "networks",	      "depends_on",   "links",
    "restart",	    "extra_hosts",    "dns",	      "dns_search",
    "dns_opt",	    "hostname",	      "labels",	      "annotations",
    "profiles",	    "pull_policy",    "post_start",   "pre_stop",
    "container_name", "develop",      "init",
};

static void warn_unmapped(struct gen *g, const struct service *s)
{
	for (size_t k = 0; k < s->n_keys; k++) {
		const char *key = s->keys[k].key;
		bool mapped = false;
		for (size_t i = 0; i < ARRAY_SIZE(mapped_keys) && !mapped; i++)
			mapped = streq(key, mapped_keys[i]);
		if (!mapped)
			diag_add(g->d, M_WARNING, &s->keys[k].pos,
				 "service %s %s: no Kubernetes form; left out",
				 s->name, key);
	}
	if (s->init)
		warn(g, s, "init",
		     "Kubernetes has no init process option: the command runs "
		     "as PID 1");
	if (s->container_name)
		warn(g, s, "container_name",
		     "Kubernetes names pods itself; left out");
	if (s->n_watch)
		warn(g, s, "develop",
		     "watch rules are for development; left out");
	if (s->pids_limit != M_UNSET || s->deploy.limits.pids != M_UNSET)
		warn(g, s, "pids_limit",
		     "Kubernetes sets pid limits per node; left out");
	if (s->n_pre_start)
		warn(g, s, "pre_start", "no Kubernetes form; left out");
	if (s->deploy.mode && streq(s->deploy.mode, "global"))
		warn(g, s, "deploy",
		     "mode global (one per node) is made a %s of %lld "
		     "replicas, not a DaemonSet",
		     kind_names[g->kind[s - g->m->services]],
		     (long long)service_replicas(s));
	if (s->deploy.restart_policy.present)
		warn(g, s, "deploy",
		     "restart_policy has no Kubernetes form: the %s restarts "
		     "as its kind does",
		     kind_names[g->kind[s - g->m->services]]);
	if (s->network_mode)
		warn(g, s, "network_mode",
		     "\"%s\" has no Kubernetes form: the pod joins the "
		     "cluster network",
		     s->network_mode);
	for (size_t i = 0; s->links && s->links[i]; i++)
		if (strchr(s->links[i], ':'))
			warn(g, s, "links",
			     "the alias in \"%s\" has no Kubernetes form: use "
			     "the service's name",
			     s->links[i]);
	for (size_t k = 0; k < s->n_networks; k++) {
		const struct m_svc_net *n = &s->networks[k];
		if (n->ipv4_address || n->ipv6_address)
			warn(g, s, "networks",
			     "the fixed address on %s has no Kubernetes form",
			     n->name);
	}
}

/* ---- pod template ----------------------------------------------------------- */

static bool is_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

static void set_pod_dns(struct gen *g, const struct service *s, json_t *pod)
{
	json_t *aliases = json_array();
	for (size_t i = 0; i < s->extra_hosts.n; i++) {
		const struct m_kv *h = &s->extra_hosts.v[i];
		if (!h->value || !is_ip(h->value)) {
			warn(g, s, "extra_hosts",
			     "%s=%s: Kubernetes takes an address only; left "
			     "out",
			     h->key, h->value ? h->value : "");
			continue;
		}
		json_t *a = json_object();
		set_str(a, "ip", h->value);
		json_t *names = json_array();
		json_array_append_new(names, json_string(h->key));
		json_object_set_new(a, "hostnames", names);
		json_array_append_new(aliases, a);
	}
	if (json_array_size(aliases))
		json_object_set(pod, "hostAliases", aliases);
	json_decref(aliases);
	if (s->dns || s->dns_search || s->dns_opt) {
		json_t *dc = obj_child(pod, "dnsConfig");
		if (s->dns)
			json_object_set_new(dc, "nameservers",
					    str_array(s->dns));
		if (s->dns_search)
			json_object_set_new(dc, "searches",
					    str_array(s->dns_search));
		if (s->dns_opt) {
			json_t *opts = json_array();
			for (size_t i = 0; s->dns_opt[i]; i++) {
				json_t *o = json_object();
				size_t n = strcspn(s->dns_opt[i], ":");
				json_object_set_new(
				    o, "name",
				    json_stringn(s->dns_opt[i], n));
				if (s->dns_opt[i][n])
					set_str(o, "value",
						s->dns_opt[i] + n + 1);
				json_array_append_new(opts, o);
			}
			json_object_set_new(dc, "options", opts);
		}
	}
	if (s->hostname) {
		_cleanup_free_ char *h = kube_name(s->hostname);
		if (h && streq(h, s->hostname))
			set_str(pod, "hostname", h);
		else
			warn(g, s, "hostname",
			     "\"%s\" is not a DNS label; left out", s->hostname);
	}
}

static json_t *env_of(const struct service *s)
{
	json_t *env = json_array();
	for (size_t i = 0; i < s->environment.n; i++) {
		const struct m_kv *kv = &s->environment.v[i];
		if (!kv->value)
			continue; /* unset, as compose leaves it */
		/* A later entry overrides an earlier one of the same name. */
		bool later = false;
		for (size_t j = i + 1; j < s->environment.n && !later; j++)
			later = streq(s->environment.v[j].key, kv->key) &&
				s->environment.v[j].value;
		if (later)
			continue;
		json_t *e = json_object();
		set_str(e, "name", kv->key);
		set_str(e, "value", kv->value);
		json_array_append_new(env, e);
	}
	return env;
}

static json_t *hook_of(const struct m_hook *h)
{
	json_t *e = json_object(), *cmd = str_array(h->command);
	json_object_set_new(e, "command", cmd);
	json_t *w = json_object();
	json_object_set_new(w, "exec", e);
	return w;
}

/* One init container per dependency to wait for: rollout of a Deployment
 * or StatefulSet whose readiness is its healthcheck, or completion of a
 * Job; none (each said) without a wait image. */
static void set_waits(struct gen *g, const struct service *s, json_t *pod)
{
	json_t *inits = json_array();
	for (size_t k = 0; k < s->n_depends_on; k++) {
		const struct m_dep *d = &s->depends_on[k];
		if (d->condition == M_DEP_STARTED)
			continue;
		const struct service *dep = project_service(g->m, d->service);
		if (!dep)
			continue;
		if (!g->o->wait_image) {
			warn(g, s, "depends_on",
			     "%s is not waited for (--no-waits): the pods start "
			     "together",
			     d->service);
			continue;
		}
		size_t di = (size_t)(dep - g->m->services);
		const char *dn = g->names[di];
		_cleanup_free_ char *what = NULL;
		json_t *argv;
		if (g->kind[di] == KIND_JOB) {
			what = xasprintf("job/%s", dn);
			argv = json_pack("[sssss]", "kubectl", "wait",
					 "--for=condition=complete",
					 "--timeout=-1s", what);
		} else if (d->condition == M_DEP_COMPLETED) {
			warn(g, s, "depends_on",
			     "%s restarts (restart: always or on-failure), so "
			     "it is a %s, which never completes: no wait is "
			     "made",
			     d->service, kind_names[g->kind[di]]);
			continue;
		} else {
			if (!dep->healthcheck.present ||
			    dep->healthcheck.disable || !dep->healthcheck.test)
				warn(g, s, "depends_on",
				     "%s has no healthcheck: ready means "
				     "started",
				     d->service);
			what = xasprintf("%s/%s",
					 g->kind[di] == KIND_STATEFULSET
					     ? "statefulset"
					     : "deployment",
					 dn);
			argv = json_pack("[ssss]", "kubectl", "rollout",
					 "status", what);
		}
		/* kubectl images may have no shell (distroless ones have
		 * none): kubectl is run directly. */
		json_t *c = json_object();
		_cleanup_free_ char *name = xasprintf("wait-%s", dn);
		set_str(c, "name", name);
		set_str(c, "image", g->o->wait_image);
		json_object_set_new(c, "command", argv);
		json_array_append_new(inits, c);
	}
	if (json_array_size(inits)) {
		json_object_set(pod, "initContainers", inits);
		set_str(pod, "serviceAccountName", WAIT_ACCOUNT);
		g->need_wait_account = true;
	}
	json_decref(inits);
}

/* A qualified name as label and annotation keys take: an optional
 * DNS-subdomain prefix and '/', then at most 63 of [-_.A-Za-z0-9],
 * alphanumeric at both ends. */
static bool qualified_name(const char *k)
{
	const char *slash = strchr(k, '/');
	const char *name = slash ? slash + 1 : k;
	if (slash) {
		size_t pl = (size_t)(slash - k);
		if (!pl || pl > 253)
			return false;
		for (const char *c = k; c < slash; c++)
			if (!islower((unsigned char)*c) &&
			    !isdigit((unsigned char)*c) && *c != '-' && *c != '.')
				return false;
	}
	size_t n = strlen(name);
	if (!n || n > 63 || !isalnum((unsigned char)name[0]) ||
	    !isalnum((unsigned char)name[n - 1]))
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("-_.", *c))
			return false;
	return true;
}

/* l as meta's annotations; a warning (at s's key) for each name that
 * Kubernetes cannot take. */
static void set_annotations(struct gen *g, const struct service *s,
			    const char *key, json_t *meta,
			    const struct m_kvlist *l)
{
	for (size_t k = 0; k < l->n; k++) {
		const struct m_kv *kv = &l->v[k];
		if (qualified_name(kv->key))
			set_str(obj_child(meta, "annotations"), kv->key,
				kv->value ? kv->value : "");
		else
			warn(g, s, key,
			     "\"%s\" is not a Kubernetes annotation name; "
			     "left out",
			     kv->key);
	}
}

/* ---- workloads -------------------------------------------------------------- */

static json_t *container_of(struct gen *g, const struct service *s,
			    const char *name, const struct kport *ports,
			    size_t n_ports)
{
	json_t *c = json_object();
	set_str(c, "name", name);
	char *image = s->image ? xstrdup(s->image)
				: xasprintf("%s-%s", g->m->name, s->name);
	if (!s->image)
		warn(g, s, "build",
		     "the image is built here: push %s where the cluster "
		     "pulls from",
		     image);
	char *pinned = g->o->pin ? g->o->pin(s->name, image, g->o->pin_arg) : NULL;
	set_str(c, "image", pinned ? pinned : image);
	free(pinned);
	free(image);
	if (s->pull_policy) {
		const char *p = streq(s->pull_policy, "always")	 ? "Always"
				: streq(s->pull_policy, "never") ? "Never"
				: streq(s->pull_policy, "build")
				    ? NULL
				    : "IfNotPresent";
		if (p)
			set_str(c, "imagePullPolicy", p);
		else
			warn(g, s, "pull_policy",
			     "\"build\" has no Kubernetes form");
	}
	if (s->entrypoint) {
		if (!s->entrypoint[0])
			warn(g, s, "entrypoint",
			     "an empty entrypoint means the image's in "
			     "Kubernetes");
		json_object_set_new(c, "command", str_array(s->entrypoint));
	}
	if (s->command)
		json_object_set_new(c, "args", str_array(s->command));
	set_str(c, "workingDir", s->working_dir);
	json_t *env = env_of(s);
	if (json_array_size(env))
		json_object_set(c, "env", env);
	json_decref(env);
	if (n_ports) {
		json_t *pa = arr_child(c, "ports");
		for (size_t i = 0; i < n_ports; i++) {
			json_t *p = port_entry(&ports[i]);
			if (ports[i].host_port &&
			    g->o->publish == KUBE_PUBLISH_HOSTPORT)
				json_object_set_new(
				    p, "hostPort",
				    json_integer(ports[i].host_port));
			else if (ports[i].published &&
				 g->o->publish == KUBE_PUBLISH_HOSTPORT)
				warn(g, s, "ports",
				     "port %u is published on a port the host "
				     "picks, which a hostPort cannot say: it "
				     "gets none",
				     ports[i].port);
			json_array_append_new(pa, p);
		}
	}
	json_t *res = resources_of(s);
	if (json_object_size(res))
		json_object_set(c, "resources", res);
	json_decref(res);
	set_probes(g, s, c);
	if (s->n_post_start || s->n_pre_stop) {
		json_t *lc = obj_child(c, "lifecycle");
		if (s->n_post_start)
			json_object_set_new(lc, "postStart",
					    hook_of(&s->post_start[0]));
		if (s->n_pre_stop)
			json_object_set_new(lc, "preStop",
					    hook_of(&s->pre_stop[0]));
		if (s->n_post_start > 1 || s->n_pre_stop > 1)
			warn(g, s, s->n_post_start > 1 ? "post_start" : "pre_stop",
			     "Kubernetes runs one hook of a kind: the first is "
			     "kept");
	}
	json_t *sc = security_of(g, s);
	if (json_object_size(sc))
		json_object_set(c, "securityContext", sc);
	json_decref(sc);
	if (s->tty)
		json_object_set_new(c, "tty", json_true());
	if (s->stdin_open)
		json_object_set_new(c, "stdin", json_true());
	return c;
}

static void add_workload(struct gen *g, size_t i)
{
	const struct service *s = &g->m->services[i];
	const char *name = g->names[i];
	enum workload kind = g->kind[i];
	json_t *o = new_doc(g, kind == KIND_JOB ? "batch/v1" : "apps/v1",
			    kind_names[kind], name, name);
	set_annotations(g, s, "deploy", json_object_get(o, "metadata"),
			&s->deploy.labels);
	json_t *spec = obj_child(o, "spec");
	int64_t replicas = service_replicas(s);
	if (kind == KIND_JOB) {
		json_object_set_new(spec, "backoffLimit", json_integer(0));
		if (replicas != 1)
			json_object_set_new(spec, "completions",
					    json_integer(replicas));
	} else {
		json_object_set_new(spec, "replicas", json_integer(replicas));
		json_t *sel = obj_child(spec, "selector");
		json_object_set_new(sel, "matchLabels", labels_of(g, name));
		if (kind == KIND_STATEFULSET)
			set_str(spec, "serviceName", name);
	}
	json_t *tmpl = obj_child(spec, "template");
	json_t *meta = obj_child(tmpl, "metadata");
	json_object_set_new(meta, "labels", labels_of(g, name));
	/* Labels and annotations of the container: the pod's annotations
	 * (label values are too narrow for what compose allows). */
	set_annotations(g, s, "labels", meta, &s->labels);
	set_annotations(g, s, "annotations", meta, &s->annotations);
	json_t *pod = obj_child(tmpl, "spec");
	set_waits(g, s, pod);
	json_t *c = container_of(g, s, name, g->ports[i], g->n_ports[i]);
	set_volumes(g, s, pod, c);
	json_array_append_new(arr_child(pod, "containers"), c);
	set_pod_dns(g, s, pod);
	if (s->sysctls.n) {
		json_t *sy = json_array();
		for (size_t k = 0; k < s->sysctls.n; k++) {
			json_t *e = json_object();
			set_str(e, "name", s->sysctls.v[k].key);
			set_str(e, "value", s->sysctls.v[k].value
						? s->sysctls.v[k].value
						: "");
			json_array_append_new(sy, e);
		}
		json_object_set_new(obj_child(pod, "securityContext"),
				    "sysctls", sy);
	}
	if (s->stop_grace_period_ns != M_UNSET)
		json_object_set_new(
		    pod, "terminationGracePeriodSeconds",
		    json_integer(seconds(g, s, "stop_grace_period",
					 s->stop_grace_period_ns, 0)));
	if (kind == KIND_JOB)
		set_str(pod, "restartPolicy", "Never");
	else if (s->restart.present && s->restart.policy != M_RESTART_ALWAYS &&
		 s->restart.policy != M_RESTART_UNLESS_STOPPED)
		warn(g, s, "restart",
		     "a %s restarts its pods always", kind_names[kind]);
}

/* A Service for a service with ports, else a headless one (its name
 * resolves to its ready pods) for one that others reach or a StatefulSet
 * governs; its network aliases get one each. */
static void add_services(struct gen *g, size_t i)
{
	const struct service *s = &g->m->services[i];
	const struct kport *ports = g->ports[i];
	size_t n_ports = g->n_ports[i];
	bool reached = false;
	for (size_t e = 0; e < g->n_edges && !reached; e++)
		reached = streq(g->edges[e].to, s->name);
	if (!n_ports && !reached && g->kind[i] != KIND_STATEFULSET)
		return;
	_cleanup_strv_ char **names = NULL;
	strv_push(&names, g->names[i]);
	if (!streq(g->names[i], s->name))
		warn(g, s, "services",
		     "\"%s\" is not a DNS label: its Service is named %s",
		     s->name, g->names[i]);
	for (size_t k = 0; k < s->n_networks; k++)
		for (size_t a = 0; s->networks[k].aliases &&
				   s->networks[k].aliases[a];
		     a++) {
			_cleanup_free_ char *al =
			    kube_name(s->networks[k].aliases[a]);
			if (al && streq(al, s->networks[k].aliases[a]) &&
			    !strv_contains(names, al))
				strv_push(&names, al);
			else if (!al || !streq(al, s->networks[k].aliases[a]))
				warn(g, s, "networks",
				     "the alias \"%s\" is not a DNS label; left "
				     "out",
				     s->networks[k].aliases[a]);
		}
	bool published = false;
	for (size_t p = 0; p < n_ports; p++)
		published |= ports[p].published;
	for (size_t k = 0; names[k]; k++) {
		json_t *o = new_doc(g, "v1", "Service", names[k], g->names[i]);
		json_t *spec = obj_child(o, "spec");
		json_object_set_new(spec, "selector",
				    labels_of(g, g->names[i]));
		if (!n_ports) {
			set_str(spec, "clusterIP", "None");
			continue;
		}
		if (published && g->o->publish == KUBE_PUBLISH_NODEPORT)
			set_str(spec, "type", "NodePort");
		else if (published &&
			 g->o->publish == KUBE_PUBLISH_LOADBALANCER)
			set_str(spec, "type", "LoadBalancer");
		json_t *pa = arr_child(spec, "ports");
		for (size_t p = 0; p < n_ports; p++) {
			json_t *e = json_object();
			const char *pr = proto_name(ports[p].proto);
			char pname[32];
			snprintf(pname, sizeof(pname), "%s-%u",
				 pr[0] == 'T' ? "tcp" : pr[0] == 'U' ? "udp"
								     : "sctp",
				 ports[p].port);
			set_str(e, "name", pname);
			uint16_t front = ports[p].port;
			if (ports[p].host_port &&
			    g->o->publish == KUBE_PUBLISH_LOADBALANCER)
				front = ports[p].host_port;
			json_object_set_new(e, "port", json_integer(front));
			json_object_set_new(e, "targetPort",
					    json_integer(ports[p].port));
			set_str(e, "protocol", pr);
			if (ports[p].host_port &&
			    g->o->publish == KUBE_PUBLISH_NODEPORT) {
				if (ports[p].host_port >= 30000 &&
				    ports[p].host_port <= 32767)
					json_object_set_new(
					    e, "nodePort",
					    json_integer(ports[p].host_port));
				else if (k == 0)
					warn(g, s, "ports",
					     "%u is outside Kubernetes' node "
					     "port range (30000-32767): the "
					     "cluster picks the node port",
					     ports[p].host_port);
			}
			json_array_append_new(pa, e);
		}
	}
}

/* ---- project objects ---------------------------------------------------------- */

static bool utf8_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80		? 1
			     : (c >> 5) == 0x6	? 2
			     : (c >> 4) == 0xe	? 3
			     : (c >> 3) == 0x1e ? 4
						: 0;
		if (!len || c == 0 || i + len > n)
			return false;
		for (size_t k = 1; k < len; k++)
			if (((unsigned char)s[i + k] >> 6) != 0x2)
				return false;
		i += len;
	}
	return true;
}

static json_t *base64_of(const char *s, size_t n)
{
	size_t out = 4 * ((n + 2) / 3) + 1;
	_cleanup_free_ unsigned char *b = xmalloc(out);
	EVP_EncodeBlock(b, (const unsigned char *)s, (int)n);
	return json_string((const char *)b);
}

/* configs: as ConfigMaps, secrets: as Secrets, one key each named after
 * the object (what a service's mount picks with subPath). */
static void add_file_objects(struct gen *g)
{
	struct {
		const struct m_file_obj *v;
		size_t n;
		bool secret;
	} sets[] = {{g->m->configs, g->m->n_configs, false},
		    {g->m->secrets, g->m->n_secrets, true}};
	for (size_t f = 0; f < ARRAY_SIZE(sets); f++)
		for (size_t i = 0; i < sets[f].n; i++) {
			const struct m_file_obj *c = &sets[f].v[i];
			bool used = false;
			for (size_t k = 0; k < g->m->n_services && !used; k++) {
				const struct service *s = &g->m->services[k];
				const struct m_file_ref *r =
				    sets[f].secret ? s->secrets : s->configs;
				size_t n = sets[f].secret ? s->n_secrets
							  : s->n_configs;
				for (size_t j = 0; j < n && !used; j++)
					used = g->selected[k] &&
					       streq(r[j].source, c->key);
			}
			if (!used)
				continue;
			const char *what = sets[f].secret ? "secret" : "config";
			if (c->external) {
				diag_add(g->d, M_WARNING, &c->pos,
					 "%s %s is external: it must exist in "
					 "the cluster",
					 what, c->key);
				continue;
			}
			/* The object's one key is the compose key, which the
			 * mounts name with subPath. */
			if (strspn(c->key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
					   "KLMNOPQRSTUVWXYZ0123456789-._") !=
			    strlen(c->key)) {
				diag_add(g->d, M_ERROR, &c->pos,
					 "%s %s: Kubernetes keys take only "
					 "letters, digits, '-', '.' and '_'",
					 what, c->key);
				continue;
			}
			_cleanup_free_ char *name = kube_name(c->key);
			_cleanup_free_ char *data = NULL;
			size_t len = 0;
			/* Not a FIFO or a device, which could be read
			 * forever. */
			struct stat st;
			const char *bad = !c->file		   ? NULL
					  : stat(c->file, &st) < 0 ? strerror(errno)
					  : !S_ISREG(st.st_mode)
					      ? "not a regular file"
					  : st.st_size > KUBE_OBJECT_MAX
					      ? "larger than the 1 MiB a "
						"Kubernetes object holds"
					      : NULL;
			if (bad) {
				diag_add(g->d, M_ERROR, &c->pos, "%s %s: %s: %s",
					 what, c->key, c->file, bad);
				continue;
			}
			if (c->file) {
				struct orch_err e = {0};
				if (read_file(c->file, &data, &len, &e) < 0) {
					diag_add(g->d, M_ERROR, &c->pos,
						 "%s %s: %s", what, c->key,
						 e.msg);
					continue;
				}
			} else if (c->content) {
				data = xstrdup(c->content);
				len = strlen(data);
			} else if (c->environment) {
				const char *v = c->env_value;
				if (!v) {
					diag_add(g->d, M_ERROR, &c->pos,
						 "%s %s: variable %s is not "
						 "set",
						 what, c->key, c->environment);
					continue;
				}
				data = xstrdup(v);
				len = strlen(data);
			}
			if (!name || !data)
				continue;
			if (len > KUBE_OBJECT_MAX) {
				diag_add(g->d, M_ERROR, &c->pos,
					 "%s %s: larger than the 1 MiB a "
					 "Kubernetes object holds",
					 what, c->key);
				continue;
			}
			json_t *o =
			    new_doc(g, "v1", sets[f].secret ? "Secret"
							    : "ConfigMap",
				    name, NULL);
			if (sets[f].secret) {
				set_str(o, "type", "Opaque");
				json_object_set_new(obj_child(o, "data"),
						    c->key,
						    base64_of(data, len));
			} else if (utf8_text(data, len))
				json_object_set_new(obj_child(o, "data"),
						    c->key,
						    json_stringn(data, len));
			else
				json_object_set_new(
				    obj_child(o, "binaryData"), c->key,
				    base64_of(data, len));
		}
}

static void add_claims(struct gen *g)
{
	for (size_t v = 0; v < g->m->n_volumes; v++) {
		const struct volume *vol = &g->m->volumes[v];
		bool used = false;
		for (size_t i = 0; i < g->m->n_services && !used; i++)
			for (size_t k = 0;
			     g->selected[i] &&
			     k < g->m->services[i].n_volumes && !used;
			     k++) {
				const struct m_mount *mt =
				    &g->m->services[i].volumes[k];
				used = mt->type == M_MOUNT_VOLUME &&
				       mt->source &&
				       streq(mt->source, vol->key);
			}
		if (!used)
			continue;
		_cleanup_free_ char *name = kube_name(vol->key);
		if (!name)
			continue;
		if (vol->external)
			diag_add(g->d, M_WARNING, &vol->pos,
				 "volume %s is external: a claim named %s must "
				 "exist in the cluster",
				 vol->key, name);
		if (vol->external)
			continue;
		if (vol->driver && !streq(vol->driver, "local"))
			diag_add(g->d, M_WARNING, &vol->pos,
				 "volume %s: driver %s has no Kubernetes form; "
				 "the cluster's default storage class is used",
				 vol->key, vol->driver);
		const char *size = "1Gi";
		for (size_t k = 0; k < vol->driver_opts.n; k++)
			if (streq(vol->driver_opts.v[k].key, "size") &&
			    vol->driver_opts.v[k].value)
				size = vol->driver_opts.v[k].value;
		json_t *o = new_doc(g, "v1", "PersistentVolumeClaim", name,
				    NULL);
		json_t *spec = obj_child(o, "spec");
		json_t *modes = json_array();
		json_array_append_new(modes, json_string("ReadWriteOnce"));
		json_object_set_new(spec, "accessModes", modes);
		json_t *req = obj_child(obj_child(spec, "resources"), "requests");
		/* Docker's sizes ("10m", "1g") as Kubernetes quantities. */
		char q[64];
		size_t n = strlen(size);
		char last = n ? (char)tolower((unsigned char)size[n - 1]) : 0;
		if (n && n < 40 && strchr("kmgt", last))
			snprintf(q, sizeof(q), "%.*s%ci", (int)(n - 1), size,
				 toupper((unsigned char)last));
		else
			snprintf(q, sizeof(q), "%s", size);
		set_str(req, "storage", q);
	}
}

static json_t *pod_peer(const struct gen *g, const char *svc)
{
	json_t *peer = json_object();
	json_object_set_new(obj_child(peer, "podSelector"), "matchLabels",
			    labels_of(g, svc));
	return peer;
}

/* The Kubernetes names of the services that may connect to s (incoming)
 * or that s may connect to, sorted, each once; NULL when none. */
static char **edge_peers(const struct gen *g, const struct service *s,
			 bool incoming)
{
	char **v = NULL;
	for (size_t e = 0; e < g->n_edges; e++) {
		const struct link_edge *l = &g->edges[e];
		const struct service *peer =
		    project_service(g->m, incoming ? l->from : l->to);
		if (!streq(incoming ? l->to : l->from, s->name) || !peer)
			continue;
		const char *pn = g->names[peer - g->m->services];
		strv_add_unique(&v, pn);
	}
	if (v)
		strv_sort(v);
	return v;
}

/* A default deny for the project's pods, then per service: ingress from
 * the services that may connect to it (link_edges), on its ports, and
 * from anywhere on its published ports; for a service whose networks are
 * all internal (no route out), egress only to the services it may connect
 * to and to the cluster's DNS. */
static void add_policies(struct gen *g)
{
	json_t *o = new_doc(g, "networking.k8s.io/v1", "NetworkPolicy",
			    "default-deny", NULL);
	json_t *spec = obj_child(o, "spec");
	json_object_set_new(obj_child(spec, "podSelector"), "matchLabels",
			    labels_of(g, NULL));
	json_t *types = json_array();
	json_array_append_new(types, json_string("Ingress"));
	json_object_set_new(spec, "policyTypes", types);

	for (size_t i = 0; i < g->m->n_services; i++) {
		if (!g->selected[i])
			continue;
		const struct service *s = &g->m->services[i];
		const struct kport *ports = g->ports[i];
		size_t n_ports = g->n_ports[i];
		_cleanup_strv_ char **peers = edge_peers(g, s, true);
		bool published = false, internal = s->n_networks > 0;
		for (size_t p = 0; p < n_ports; p++)
			published |= ports[p].published;
		for (size_t k = 0; k < s->n_networks; k++) {
			const struct network *n =
			    project_network(g->m, s->networks[k].name);
			internal &= n && n->internal;
		}
		if (!peers && !published && !internal)
			continue;
		json_t *np = new_doc(g, "networking.k8s.io/v1",
				     "NetworkPolicy", g->names[i], g->names[i]);
		json_t *ps = obj_child(np, "spec");
		json_object_set_new(obj_child(ps, "podSelector"),
				    "matchLabels", labels_of(g, g->names[i]));
		json_t *pt = json_array();
		if (peers || published)
			json_array_append_new(pt, json_string("Ingress"));
		if (internal)
			json_array_append_new(pt, json_string("Egress"));
		json_object_set_new(ps, "policyTypes", pt);
		if (peers) {
			json_t *rule = json_object();
			json_t *from = arr_child(rule, "from");
			for (size_t k = 0; peers[k]; k++)
				json_array_append_new(from,
						      pod_peer(g, peers[k]));
			if (n_ports) {
				json_t *pa = arr_child(rule, "ports");
				for (size_t p = 0; p < n_ports; p++) {
					json_t *e = json_object();
					set_str(e, "protocol",
						proto_name(ports[p].proto));
					json_object_set_new(
					    e, "port",
					    json_integer(ports[p].port));
					json_array_append_new(pa, e);
				}
			}
			json_array_append_new(arr_child(ps, "ingress"), rule);
		}
		if (published) {
			json_t *rule = json_object();
			json_t *pa = arr_child(rule, "ports");
			for (size_t p = 0; p < n_ports; p++) {
				if (!ports[p].published)
					continue;
				json_t *e = json_object();
				set_str(e, "protocol",
					proto_name(ports[p].proto));
				json_object_set_new(e, "port",
						    json_integer(ports[p].port));
				json_array_append_new(pa, e);
			}
			json_array_append_new(arr_child(ps, "ingress"), rule);
		}
		if (internal) {
			/* No route out: only to the services it may connect
			 * to (whose ingress rules say on which ports). */
			json_t *eg = arr_child(ps, "egress");
			_cleanup_strv_ char **to_peers = edge_peers(g, s, false);
			if (to_peers) {
				json_t *rule = json_object();
				json_t *to = arr_child(rule, "to");
				for (size_t k = 0; to_peers[k]; k++)
					json_array_append_new(
					    to, pod_peer(g, to_peers[k]));
				json_array_append_new(eg, rule);
			}
			/* The cluster's DNS, which lives in kube-system. */
			json_t *dns = json_object();
			json_t *peer = json_object();
			json_t *nsl = json_object();
			set_str(nsl, "kubernetes.io/metadata.name",
				"kube-system");
			json_object_set_new(obj_child(peer, "namespaceSelector"),
					    "matchLabels", nsl);
			json_array_append_new(arr_child(dns, "to"), peer);
			json_t *dp = arr_child(dns, "ports");
			for (int u = 0; u < 2; u++) {
				json_t *e = json_object();
				set_str(e, "protocol", u ? "TCP" : "UDP");
				json_object_set_new(e, "port",
						    json_integer(53));
				json_array_append_new(dp, e);
			}
			json_array_append_new(eg, dns);
			bool waits = false;
			for (size_t k = 0; g->o->wait_image && k < s->n_depends_on;
			     k++)
				waits |= s->depends_on[k].condition !=
					 M_DEP_STARTED;
			if (waits) {
				json_t *api = json_object();
				json_t *ap = arr_child(api, "ports");
				for (int k = 0; k < 2; k++) {
					json_t *e = json_object();
					set_str(e, "protocol", "TCP");
					json_object_set_new(
					    e, "port",
					    json_integer(k ? 6443 : 443));
					json_array_append_new(ap, e);
				}
				json_array_append_new(eg, api);
				warn(g, s, "depends_on",
				     "its waits ask the Kubernetes API, so the "
				     "egress policy of its internal networks "
				     "allows TCP 443 and 6443 to any address");
			}
		}
	}
}

/* What the wait init containers need: reading Deployments, StatefulSets
 * and Jobs of the namespace. */
static void add_wait_account(struct gen *g)
{
	new_doc(g, "v1", "ServiceAccount", WAIT_ACCOUNT, NULL);
	json_t *role =
	    new_doc(g, "rbac.authorization.k8s.io/v1", "Role", WAIT_ACCOUNT,
		    NULL);
	json_t *rules = arr_child(role, "rules");
	static const char *const groups[][3] = {
	    {"apps", "deployments", "statefulsets"},
	    {"apps", "replicasets", NULL},
	    {"batch", "jobs", NULL}};
	for (size_t k = 0; k < ARRAY_SIZE(groups); k++) {
		json_t *r = json_object();
		json_t *ag = json_array(), *res = json_array(),
		       *verbs = json_array();
		json_array_append_new(ag, json_string(groups[k][0]));
		for (int j = 1; j < 3 && groups[k][j]; j++)
			json_array_append_new(res, json_string(groups[k][j]));
		json_array_append_new(verbs, json_string("get"));
		json_array_append_new(verbs, json_string("list"));
		json_array_append_new(verbs, json_string("watch"));
		json_object_set_new(r, "apiGroups", ag);
		json_object_set_new(r, "resources", res);
		json_object_set_new(r, "verbs", verbs);
		json_array_append_new(rules, r);
	}
	json_t *rb = new_doc(g, "rbac.authorization.k8s.io/v1", "RoleBinding",
			     WAIT_ACCOUNT, NULL);
	json_t *ref = obj_child(rb, "roleRef");
	set_str(ref, "apiGroup", "rbac.authorization.k8s.io");
	set_str(ref, "kind", "Role");
	set_str(ref, "name", WAIT_ACCOUNT);
	json_t *sub = json_object();
	set_str(sub, "kind", "ServiceAccount");
	set_str(sub, "name", WAIT_ACCOUNT);
	set_str(sub, "namespace", g->ns);
	json_array_append_new(arr_child(rb, "subjects"), sub);
}

/* ---- the whole ------------------------------------------------------------------ */

static const char *const kind_order[] = {
    "Namespace",       "ServiceAccount", "Role",
    "RoleBinding",     "ConfigMap",	 "Secret",
    "PersistentVolumeClaim", "Service",	 "Deployment",
    "StatefulSet",     "Job",		 "NetworkPolicy"};

static size_t kind_rank(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kind_order); i++)
		if (streq(kind, kind_order[i]))
			return i;
	return ARRAY_SIZE(kind_order);
}

static int doc_cmp(const void *a, const void *b)
{
	const struct kube_doc *x = a, *y = b;
	size_t rx = kind_rank(x->kind), ry = kind_rank(y->kind);
	if (rx != ry)
		return rx < ry ? -1 : 1;
	return strcmp(x->name, y->name);
}

struct keyed {
	const char *key;
	const struct m_pos *pos;
};

/* An error for each two of v[0..n) whose keys make the same DNS label. */
static void names_clash(struct orch_diag *d, const char *what,
			const struct keyed *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *a = kube_name(v[i].key);
		for (size_t j = 0; a && j < i; j++) {
			_cleanup_free_ char *b = kube_name(v[j].key);
			if (b && streq(a, b))
				diag_add(d, M_ERROR, v[i].pos,
					 "%s %s and %s have the same Kubernetes "
					 "name %s",
					 what, v[j].key, v[i].key, a);
		}
	}
}

/* Which services become Jobs: run once (restart: "no", compose's
 * default), and waited for with service_completed_successfully by
 * another. */
static enum workload workload_of(const struct project *m, size_t i)
{
	const struct service *s = &m->services[i];
	if (!s->restart.present || s->restart.policy == M_RESTART_NO)
		for (size_t k = 0; k < m->n_services; k++)
			for (size_t d = 0; d < m->services[k].n_depends_on; d++)
				if (streq(m->services[k].depends_on[d].service,
					  s->name) &&
				    m->services[k].depends_on[d].condition ==
					M_DEP_COMPLETED)
					return KIND_JOB;
	bool named = false;
	for (size_t k = 0; k < s->n_volumes; k++)
		named |= s->volumes[k].type == M_MOUNT_VOLUME &&
			 s->volumes[k].source;
	return named && service_replicas(s) == 1 ? KIND_STATEFULSET
						 : KIND_DEPLOYMENT;
}

int kube_generate(const struct project *m, const struct kube_opts *o,
		  struct kube_doc **out, size_t *count, struct orch_diag *d)
{
	struct gen g = {.m = m, .o = o, .d = d};
	size_t errors = d->n_errors;
	_cleanup_free_ char *ns = kube_name(o->ns ? o->ns : m->name);
	if (!ns || (o->ns && !streq(ns, o->ns))) {
		diag_add(d, M_ERROR, NULL,
			 "namespace \"%s\" is not a DNS label",
			 o->ns ? o->ns : m->name);
		return -EINVAL;
	}
	g.ns = ns;
	g.part = kube_name(m->name);
	g.names = xcalloc(m->n_services + 1, sizeof(*g.names));
	g.selected = xcalloc(m->n_services + 1, sizeof(*g.selected));
	g.kind = xcalloc(m->n_services + 1, sizeof(*g.kind));
	g.ports = xcalloc(m->n_services + 1, sizeof(*g.ports));
	g.n_ports = xcalloc(m->n_services + 1, sizeof(*g.n_ports));
	g.edges = link_edges(m, &g.n_edges);
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		g.names[i] = kube_name(s->name);
		g.selected[i] = !o->services || !o->services[0] ||
				strv_contains(o->services, s->name);
		g.kind[i] = workload_of(m, i);
		if (!g.names[i])
			diag_add(d, M_ERROR, &s->pos,
				 "service %s has no Kubernetes name", s->name);
	}
	/* Objects whose names meet once made DNS labels. */
	size_t most = m->n_services + m->n_volumes + m->n_configs +
		      m->n_secrets + 1;
	_cleanup_free_ struct keyed *k = xcalloc(most, sizeof(*k));
	for (size_t i = 0; i < m->n_services; i++)
		k[i] = (struct keyed){m->services[i].name, &m->services[i].pos};
	names_clash(d, "services", k, m->n_services);
	for (size_t i = 0; i < m->n_volumes; i++)
		k[i] = (struct keyed){m->volumes[i].key, &m->volumes[i].pos};
	names_clash(d, "volumes", k, m->n_volumes);
	for (size_t i = 0; i < m->n_configs; i++)
		k[i] = (struct keyed){m->configs[i].key, &m->configs[i].pos};
	names_clash(d, "configs", k, m->n_configs);
	for (size_t i = 0; i < m->n_secrets; i++)
		k[i] = (struct keyed){m->secrets[i].key, &m->secrets[i].pos};
	names_clash(d, "secrets", k, m->n_secrets);
	if (d->n_errors == errors) {
		new_doc(&g, "v1", "Namespace", ns, NULL);
		json_object_del(
		    json_object_get(g.docs[0].obj, "metadata"), "namespace");
		for (size_t i = 0; i < m->n_services; i++) {
			if (!g.selected[i])
				continue;
			warn_unmapped(&g, &m->services[i]);
			g.ports[i] =
			    service_ports(&g, &m->services[i], &g.n_ports[i]);
			add_workload(&g, i);
			add_services(&g, i);
		}
		add_file_objects(&g);
		add_claims(&g);
		add_policies(&g);
		if (g.need_wait_account)
			add_wait_account(&g);
		qsort(g.docs, g.n_docs, sizeof(*g.docs), doc_cmp);
	}
	for (size_t i = 0; i < m->n_services; i++) {
		free(g.names[i]);
		free(g.ports[i]);
	}
	free(g.names);
	free(g.part);
	free(g.ports);
	free(g.n_ports);
	free(g.selected);
	free(g.kind);
	free(g.edges);
	if (d->n_errors != errors) {
		kube_docs_free(g.docs, g.n_docs);
		return -EINVAL;
	}
	*out = g.docs;
	*count = g.n_docs;
	return 0;
}

void kube_docs_free(struct kube_doc *docs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(docs[i].kind);
		free(docs[i].name);
		json_decref(docs[i].obj);
	}
	free(docs);
}
