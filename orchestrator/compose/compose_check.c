/* Checks of values that reach the host or a generated file, run on every
 * load (even without the consistency checks): only namespaced sysctls;
 * names and addresses that cannot break a line of /etc/hosts or
 * /etc/resolv.conf or climb a path; an absolute working_dir; a memory
 * limit a container can start with; and counts that stay bounded. */
#include "orchestrator/compose/compose_impl.h"

#include <ctype.h>

static void serr(struct orch_diag *d, const struct m_pos *pos,
		 const struct service *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void serr(struct orch_diag *d, const struct m_pos *pos,
		 const struct service *s, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	diag_add(d, M_ERROR, pos, "services.%s.%s: %s", s->name, key, msg);
}

/* A value as it may be printed on one line: control characters escaped,
 * long values cut.  Returns buf. */
static const char *quoted(char buf[96], const char *s)
{
	size_t o = 0;
	for (; *s && o < 80; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n')
			o += (size_t)snprintf(buf + o, 96 - o, "\\n");
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)snprintf(buf + o, 96 - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	if (*s)
		o += (size_t)snprintf(buf + o, 96 - o, "...");
	buf[o] = '\0';
	return buf;
}

/* Left for later when the file was read without interpolation: the value
 * is still "${...}". */
static bool raw_value(const struct project *p, const char *v)
{
	return p->raw && strchr(v, '$');
}

/* ---- names ----------------------------------------------------------------
 */

/* A host or domain name as RFC 1123 has it: labels of letters, digits,
 * '-' (and '_', which service names and aliases use), separated by single
 * dots, none empty, none starting or ending with '-', at most 63 bytes
 * each, at most max in all; a domain may end with one dot. */
static bool dns_name_ok(const char *s, size_t max, bool trailing_dot)
{
	size_t len = strlen(s);
	if (trailing_dot && len > 1 && s[len - 1] == '.')
		len--;
	if (!len || len > max)
		return false;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (!label || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (c == '-' && !label)
			return false;
		if (++label > 63)
			return false;
	}
	return label && s[len - 1] != '-';
}

static const char host_rule[] =
    "want letters, digits, '-' and '_' in labels separated by single dots "
    "(RFC 1123)";

/* One name of key; reports and returns false when it is no host name. */
static bool check_name(const struct project *p, const struct service *s,
		       const char *key, const char *what, const char *v,
		       size_t max, bool trailing_dot, const struct m_pos *pos,
		       struct orch_diag *d)
{
	if (raw_value(p, v) || dns_name_ok(v, max, trailing_dot))
		return true;
	char b[96];
	serr(d, pos, s, key, "\"%s\" is not a valid %s: %s", quoted(b, v), what,
	     host_rule);
	return false;
}

static void check_name_list(const struct project *p, const struct service *s,
			    const char *key, const char *what, char **v,
			    bool trailing_dot, struct orch_diag *d)
{
	for (size_t i = 0; v && v[i]; i++)
		check_name(p, s, key, what, v[i], 253, trailing_dot,
			   service_key_pos(s, key), d);
}

static bool is_ip(const char *v)
{
	return ip_valid(v, NULL);
}

/* extra_hosts (a service's or its build's, key): a host name and an IPv4
 * or IPv6 address ("host:ip", "host=ip", "host=[v6]"); the brackets are
 * dropped for /etc/hosts. */
static void check_hosts(struct project *p, struct service *s,
			struct m_kvlist *hosts, const char *key,
			struct orch_diag *d)
{
	for (size_t i = 0; i < hosts->n; i++) {
		struct m_kv *kv = &hosts->v[i];
		char b[96];
		check_name(p, s, key, "host name", kv->key, 253, false,
			   &kv->pos, d);
		const char *v = kv->value ? kv->value : "";
		size_t len = strlen(v);
		if (len > 2 && v[0] == '[' && v[len - 1] == ']') {
			char *inner = arena_strndup(p->arena, v + 1, len - 2);
			if (strchr(inner, ':') && is_ip(inner)) {
				kv->value = inner;
				continue;
			}
		}
		if (!raw_value(p, v) && !is_ip(v) && !streq(v, "host-gateway"))
			serr(d, &kv->pos, s, key,
			     "\"%s\" is not an IP address (want "
			     "host=IPv4, host=IPv6 or host=host-gateway)",
			     quoted(b, v));
	}
}

/* dns_opt: resolver options such as ndots:2, timeout:1, rotate. */
static void check_dns_opts(const struct project *p, const struct service *s,
			   struct orch_diag *d)
{
	for (size_t i = 0; s->dns_opt && s->dns_opt[i]; i++) {
		const char *v = s->dns_opt[i];
		bool ok = *v && strlen(v) <= 64;
		for (const char *c = v; ok && *c; c++)
			ok = isalnum((unsigned char)*c) || strchr("_-.:", *c);
		char b[96];
		if (!ok && !raw_value(p, v))
			serr(d, service_key_pos(s, "dns_opt"), s, "dns_opt",
			     "\"%s\" is not a resolver option (want e.g. "
			     "ndots:2 or rotate)",
			     quoted(b, v));
	}
}

static void check_dns(const struct project *p, const struct service *s,
		      struct orch_diag *d)
{
	for (size_t i = 0; s->dns && s->dns[i]; i++) {
		char b[96];
		if (!is_ip(s->dns[i]) && !raw_value(p, s->dns[i]))
			diag_add(d, M_ERROR, service_key_pos(s, "dns"),
				 "service \"%s\": dns server \"%s\" is not an "
				 "IP address",
				 s->name, quoted(b, s->dns[i]));
	}
}

/* links: "service" or "service:alias"; the service is checked as a
 * reference, the alias is a name in /etc/hosts and DNS. */
static void check_links(const struct project *p, const struct service *s,
			struct orch_diag *d)
{
	for (size_t i = 0; s->links && s->links[i]; i++) {
		const char *colon = strchr(s->links[i], ':');
		if (colon)
			check_name(p, s, "links", "link alias", colon + 1, 253,
				   false, service_key_pos(s, "links"), d);
	}
}

static void check_names(struct project *p, struct service *s,
			struct orch_diag *d)
{
	/* The kernel keeps 64 bytes of host and domain name. */
	if (s->hostname)
		check_name(p, s, "hostname", "host name", s->hostname, 64,
			   false, service_key_pos(s, "hostname"), d);
	if (s->domainname)
		check_name(p, s, "domainname", "domain name", s->domainname, 64,
			   true, service_key_pos(s, "domainname"), d);
	check_name_list(p, s, "dns_search", "search domain", s->dns_search,
			true, d);
	check_dns(p, s, d);
	check_dns_opts(p, s, d);
	check_hosts(p, s, &s->extra_hosts, "extra_hosts", d);
	check_hosts(p, s, &s->build.extra_hosts, "build.extra_hosts", d);
	check_links(p, s, d);
	for (size_t i = 0; i < s->n_networks; i++) {
		const struct m_svc_net *n = &s->networks[i];
		for (size_t j = 0; n->aliases && n->aliases[j]; j++)
			check_name(p, s, "networks", "network alias",
				   n->aliases[j], 253, false, &n->pos, d);
	}
}

/* Keys of services, networks and volumes as compose has them
 * ([a-zA-Z0-9._-]+), and not starting with '.' or '-', so that no name
 * is a path element of its own or an option; names given with name:
 * as docker has them ([a-zA-Z0-9][a-zA-Z0-9_.-]*). */
static bool object_key_ok(const char *s, bool docker)
{
	if (!*s || strlen(s) > 255 || s[0] == '.' || s[0] == '-' ||
	    (docker && s[0] == '_'))
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("._-", *c))
			return false;
	return true;
}

static void check_key(const struct project *p, const char *what,
		      const char *name, bool docker, const struct m_pos *pos,
		      struct orch_diag *d)
{
	char b[96];
	if (name && !object_key_ok(name, docker) && !raw_value(p, name))
		diag_add(d, M_ERROR, pos,
			 "invalid %s name \"%s\": want letters, digits, '.', "
			 "'_' and '-', starting with a letter or digit",
			 what, quoted(b, name));
}

static void check_object_names(const struct project *p, struct orch_diag *d)
{
	for (size_t i = 0; i < p->n_services; i++)
		check_key(p, "service", p->services[i].name, false,
			  &p->services[i].pos, d);
	for (size_t i = 0; i < p->n_disabled; i++)
		check_key(p, "service", p->disabled[i].name, false,
			  &p->disabled[i].pos, d);
	for (size_t i = 0; i < p->n_networks; i++) {
		const struct network *n = &p->networks[i];
		check_key(p, "network", n->key, false, &n->pos, d);
		if (!streq(n->name, n->key))
			check_key(p, "network", n->name, true, &n->pos, d);
	}
	for (size_t i = 0; i < p->n_volumes; i++) {
		const struct volume *v = &p->volumes[i];
		check_key(p, "volume", v->key, false, &v->pos, d);
		if (!streq(v->name, v->key))
			check_key(p, "volume", v->name, true, &v->pos, d);
	}
}

/* ---- sysctls ----------------------------------------------------------------
 */

/* The IPC namespace's sysctls, as runc lists them. */
static const char *const ipc_sysctls[] = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
};

/* "net/ipv4/ip_forward" is "net.ipv4.ip_forward" (sysctl(8)): a key
 * whose first separator is '/' swaps '.' and '/'. */
static char *sysctl_dotted(const char *key)
{
	char *s = xstrdup(key);
	size_t first = strcspn(s, "./");
	if (s[first] != '/')
		return s;
	for (char *c = s; *c; c++)
		*c = *c == '.' ? '/' : *c == '/' ? '.' : *c;
	return s;
}

/* Components of letters, digits, '_' and '-' (and '/' inside one, for
 * an interface name with a dot), none empty. */
static bool sysctl_key_ok(const char *dotted)
{
	if (!*dotted || strlen(dotted) > 255)
		return false;
	const char *prev = ".";
	for (const char *c = dotted; *c; prev = c++) {
		if (*c == '.' || *c == '/') {
			if (*prev == '.' || *prev == '/' || !c[1])
				return false;
			continue;
		}
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-')
			return false;
	}
	return true;
}

static bool is_host(const char *mode)
{
	return mode && streq(mode, "host");
}

/* Why key may not be set in this service's container, or NULL when it
 * may: runc's rules. */
static const char *sysctl_refusal(const struct service *s, const char *key)
{
	bool ipc = startswith(key, "fs.mqueue.");
	for (size_t i = 0; i < ARRAY_SIZE(ipc_sysctls) && !ipc; i++)
		ipc = streq(key, ipc_sysctls[i]);
	if (ipc)
		return is_host(s->ipc) ? "it is not allowed with ipc: host, "
					 "where it would change the host's "
					 "value"
				       : NULL;
	if (startswith(key, "net."))
		return is_host(s->network_mode)
			   ? "it is not allowed with network_mode: host, "
			     "where it would change the host's value"
			   : NULL;
	if (streq(key, "kernel.domainname"))
		return is_host(s->uts) ? "it is not allowed with uts: host, "
					 "where it would change the host's "
					 "value"
				       : NULL;
	if (streq(key, "kernel.hostname"))
		return "set the host name with hostname: instead";
	return "it is not in a namespace of the container and would change "
	       "the whole host (allowed: kernel.msg*, kernel.sem, "
	       "kernel.shm*, fs.mqueue.*, net.* and kernel.domainname)";
}

static void check_sysctls(const struct project *p, const struct service *s,
			  struct orch_diag *d)
{
	for (size_t i = 0; i < s->sysctls.n; i++) {
		const struct m_kv *kv = &s->sysctls.v[i];
		char b[96];
		if (raw_value(p, kv->key))
			continue;
		_cleanup_free_ char *key = sysctl_dotted(kv->key);
		if (!sysctl_key_ok(key)) {
			serr(d, &kv->pos, s, "sysctls",
			     "\"%s\" is not a sysctl name", quoted(b, kv->key));
			continue;
		}
		const char *why = sysctl_refusal(s, key);
		if (why)
			serr(d, &kv->pos, s, "sysctls",
			     "sysctl \"%s\" is refused: %s", quoted(b, kv->key),
			     why);
	}
}

/* ---- paths, memory, counts ---------------------------------------------- */

static void check_working_dir(const struct project *p, const struct service *s,
			      struct orch_diag *d)
{
	const char *v = s->working_dir;
	char b[96];
	if (v && *v && v[0] != '/' && !raw_value(p, v))
		serr(d, service_key_pos(s, "working_dir"), s, "working_dir",
		     "\"%s\" is not an absolute path (a container's working "
		     "directory must start with /)",
		     quoted(b, v));
}

static void check_memory(const struct service *s, struct orch_diag *d)
{
	struct m_resources r = service_limits(s);
	if (r.memory == M_UNSET || r.memory == 0 || r.memory >= ORCH_MIN_MEMORY)
		return;
	bool own = s->mem_limit != M_UNSET;
	serr(d,
	     own ? service_key_pos(s, "mem_limit")
		 : service_key_pos(s, "deploy"),
	     s, own ? "mem_limit" : "deploy.resources.limits.memory",
	     "%lld bytes is below the smallest memory limit a container "
	     "starts with (6 MiB)",
	     (long long)r.memory);
}

/* cpu_period and cpu_quota in the kernel's range (microseconds; a quota
 * of -1 is no limit), as docker checks them. */
static void check_cgroup(const struct project *p, const struct service *s,
			 struct orch_diag *d)
{
	if (s->cgroup && !streq(s->cgroup, "host") &&
	    !streq(s->cgroup, "private") && !raw_value(p, s->cgroup))
		serr(d, service_key_pos(s, "cgroup"), s, "cgroup",
		     "\"%s\": want host or private", shown_value(s->cgroup));
}

/* pid: host, service:NAME, container:NAME; ipc: those, private,
 * shareable or none. */
static void check_pid_ipc(const struct project *p, const struct service *s,
			  struct orch_diag *d)
{
	const char *keys[] = {"pid", "ipc"};
	const char *vals[] = {s->pid, s->ipc};
	for (size_t i = 0; i < 2; i++) {
		const char *v = vals[i];
		if (!v || raw_value(p, v) || streq(v, "host") ||
		    (startswith(v, "service:") && v[8]) ||
		    (startswith(v, "container:") && v[10]) ||
		    (i == 1 && (streq(v, "private") || streq(v, "shareable") ||
				streq(v, "none"))))
			continue;
		serr(d, service_key_pos(s, keys[i]), s, keys[i],
		     "\"%s\": want host, service:NAME or container:NAME%s",
		     shown_value(v), i ? ", private, shareable or none" : "");
	}
}

static void check_cpuset(const struct service *s, struct orch_diag *d)
{
	uint64_t mask[CPUSET_WORDS];
	if (s->cpuset && !cpulist_parse(s->cpuset, mask, CPUSET_WORDS * 64))
		serr(d, service_key_pos(s, "cpuset"), s, "cpuset",
		     "\"%s\": want CPU numbers and ranges, as \"0-3,8\"",
		     shown_value(s->cpuset));
}

static void check_cfs(const struct service *s, struct orch_diag *d)
{
	if (s->cpu_period != M_UNSET &&
	    (s->cpu_period < 1000 || s->cpu_period > 1000000))
		serr(d, service_key_pos(s, "cpu_period"), s, "cpu_period",
		     "%lld: want 1000 to 1000000 (microseconds)",
		     (long long)s->cpu_period);
	if (s->cpu_quota != M_UNSET && s->cpu_quota != -1 &&
	    s->cpu_quota < 1000)
		serr(d, service_key_pos(s, "cpu_quota"), s, "cpu_quota",
		     "%lld: want at least 1000 (microseconds), or -1",
		     (long long)s->cpu_quota);
}

/* orch remaps every container but those that opt out (userns_mode:
 * host, privileged); keep-id is rootless podman's, for a user's own id,
 * and a rootless orch's too. */
static void check_userns_mode(const struct project *p, const struct service *s,
			      struct orch_diag *d)
{
	const char *v = s->userns_mode;
	char b[96];
	if (!v || is_host(v) || raw_value(p, v))
		return;
	if (streq(v, "keep-id")) {
		if (!rootless())
			serr(d, service_key_pos(s, "userns_mode"), s,
			     "userns_mode",
			     "keep-id maps the calling user into the "
			     "container, which only a rootless orch does; run "
			     "by root, each project's containers get an id "
			     "range of their own (or use host)");
	} else
		serr(d, service_key_pos(s, "userns_mode"), s, "userns_mode",
		     "\"%s\" is not a mode orch knows: host runs the service "
		     "without a user namespace; leave it out for a range of "
		     "the project's own",
		     quoted(b, v));
}

/* Containers and published ports of all replicas together. */
static void check_counts(const struct project *p, struct orch_diag *d)
{
	int64_t containers = 0, ports = 0;
	for (size_t i = 0; i < p->n_services; i++) {
		const struct service *s = &p->services[i];
		int64_t n = service_replicas(s);
		containers += n;
		ports += n * (int64_t)s->n_ports;
		if (containers > ORCH_MAX_CONTAINERS) {
			diag_add(d, M_ERROR, &s->pos,
				 "services.%s: the project would run more "
				 "than %d containers (replicas of all "
				 "services together)",
				 s->name, ORCH_MAX_CONTAINERS);
			return;
		}
		if (ports > ORCH_MAX_PORTS) {
			diag_add(d, M_ERROR, service_key_pos(s, "ports"),
				 "services.%s.ports: the project would "
				 "publish more than %d ports (each port of "
				 "each replica)",
				 s->name, ORCH_MAX_PORTS);
			return;
		}
	}
}

static void check_service(struct project *p, struct service *s,
			  struct orch_diag *d)
{
	check_names(p, s, d);
	check_sysctls(p, s, d);
	check_working_dir(p, s, d);
	check_memory(s, d);
	check_cfs(s, d);
	check_cpuset(s, d);
	check_cgroup(p, s, d);
	check_pid_ipc(p, s, d);
	check_userns_mode(p, s, d);
}

void compose_check_values(struct project *p, struct orch_diag *d)
{
	for (size_t i = 0; i < p->n_services; i++)
		check_service(p, &p->services[i], d);
	for (size_t i = 0; i < p->n_disabled; i++)
		check_service(p, &p->disabled[i], d);
	check_object_names(p, d);
	check_counts(p, d);
}
