/* orch-runtime's `run` command line -> a container spec (pure, so the unit
 * tests can pin it down; runtime/main.c is the thin program around it). */
#include "runtime/container_impl.h"

#include <getopt.h>
#include <signal.h>

void rt_cli_run_clear(struct rt_cli_run *o)
{
	struct rt_spec *s = &o->spec;
	strv_free(s->lowers);
	strv_free(s->env);
	strv_free(s->cap_add);
	strv_free(s->cap_drop);
	strv_free(s->sysctls);
	strv_free(s->devices);
	strv_free(s->device_rules);
	strv_free(s->argv);
	strv_free(o->volumes);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].source);
		free(s->mounts[i].target);
	}
	free(s->mounts);
	free(o->id);
	memset(o, 0, sizeof(*o));
}

static struct rt_mount *add_mount(struct rt_spec *s)
{
	s->mounts = xrealloc(s->mounts, (s->n_mounts + 1) * sizeof(*s->mounts));
	struct rt_mount *m = &s->mounts[s->n_mounts++];
	memset(m, 0, sizeof(*m));
	return m;
}

/* SRC:DST[:ro|rw] */
static int parse_bind(struct rt_spec *s, const char *arg, struct orch_err *e)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	char *dst = strchr(copy, ':');
	if (!dst || dst == copy || !dst[1])
		return err_set(e, EINVAL, "--mount %s: want SRC:DST[:ro]", arg);
	*dst++ = '\0';
	bool ro = false;
	char *mode = strchr(dst, ':');
	if (mode) {
		*mode++ = '\0';
		if (streq(mode, "ro"))
			ro = true;
		else if (!streq(mode, "rw"))
			return err_set(e, EINVAL, "--mount %s: mode must be ro or rw", arg);
	}
	if (dst[0] != '/')
		return err_set(e, EINVAL, "--mount %s: %s is not absolute", arg, dst);
	struct rt_mount *m = add_mount(s);
	m->type = RT_MOUNT_BIND;
	m->source = xstrdup(copy);
	m->target = xstrdup(dst);
	m->readonly = ro;
	return 0;
}

/* DST[:size] */
static int parse_tmpfs(struct rt_spec *s, const char *arg, struct orch_err *e)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	char *size = strchr(copy, ':');
	int64_t bytes = 0;
	if (size) {
		*size++ = '\0';
		if (startswith(size, "size="))
			size += 5;
		if (parse_bytes(size, &bytes) < 0)
			return err_set(e, EINVAL, "--tmpfs %s: bad size", arg);
	}
	if (copy[0] != '/')
		return err_set(e, EINVAL, "--tmpfs %s: %s is not absolute", arg, copy);
	struct rt_mount *m = add_mount(s);
	m->type = RT_MOUNT_TMPFS;
	m->target = xstrdup(copy);
	m->size = bytes;
	return 0;
}

static int parse_user(struct rt_spec *s, const char *arg, struct orch_err *e)
{
	char *end;
	unsigned long u = strtoul(arg, &end, 10);
	if (end == arg || (*end && *end != ':'))
		return err_set(e, EINVAL, "--user %s: want UID[:GID] (numbers)", arg);
	s->uid = (uid_t)u;
	s->gid = (gid_t)u;
	if (*end == ':') {
		const char *g = end + 1;
		unsigned long gv = strtoul(g, &end, 10);
		if (end == g || *end)
			return err_set(e, EINVAL, "--user %s: bad GID", arg);
		s->gid = (gid_t)gv;
	}
	return 0;
}

enum {
	OPT_ROOTFS = 256, OPT_RW, OPT_HOSTNAME, OPT_ENV, OPT_WORKDIR, OPT_USER,
	OPT_MOUNT, OPT_TMPFS, OPT_READONLY, OPT_MEMORY, OPT_MEMSWAP, OPT_CPUS,
	OPT_SHARES, OPT_PIDS, OPT_CAPADD, OPT_CAPDROP, OPT_NOSECCOMP,
	OPT_SECCOMP, OPT_INIT, OPT_NETNS, OPT_NET, OPT_DETACH, OPT_NAME,
	OPT_PRIV, OPT_SYSCTL, OPT_STOPSIG, OPT_IMAGE, OPT_VOLUME, OPT_DEVICE,
	OPT_DEVRULE, OPT_USERNS,
};

static const struct option run_opts[] = {
	{"rootfs", required_argument, NULL, OPT_ROOTFS},
	{"rw", required_argument, NULL, OPT_RW},
	{"hostname", required_argument, NULL, OPT_HOSTNAME},
	{"env", required_argument, NULL, OPT_ENV},
	{"workdir", required_argument, NULL, OPT_WORKDIR},
	{"user", required_argument, NULL, OPT_USER},
	{"mount", required_argument, NULL, OPT_MOUNT},
	{"tmpfs", required_argument, NULL, OPT_TMPFS},
	{"read-only", no_argument, NULL, OPT_READONLY},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"memory-swap", required_argument, NULL, OPT_MEMSWAP},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"cpu-shares", required_argument, NULL, OPT_SHARES},
	{"pids", required_argument, NULL, OPT_PIDS},
	{"cap-add", required_argument, NULL, OPT_CAPADD},
	{"cap-drop", required_argument, NULL, OPT_CAPDROP},
	{"no-seccomp", no_argument, NULL, OPT_NOSECCOMP},
	{"seccomp-profile", required_argument, NULL, OPT_SECCOMP},
	{"init", no_argument, NULL, OPT_INIT},
	{"netns", required_argument, NULL, OPT_NETNS},
	{"net", required_argument, NULL, OPT_NET},
	{"detach", no_argument, NULL, OPT_DETACH},
	{"name", required_argument, NULL, OPT_NAME},
	{"privileged", no_argument, NULL, OPT_PRIV},
	{"sysctl", required_argument, NULL, OPT_SYSCTL},
	{"stop-signal", required_argument, NULL, OPT_STOPSIG},
	{"image", required_argument, NULL, OPT_IMAGE},
	{"volume", required_argument, NULL, OPT_VOLUME},
	{"device", required_argument, NULL, OPT_DEVICE},
	{"device-cgroup-rule", required_argument, NULL, OPT_DEVRULE},
	{"userns", required_argument, NULL, OPT_USERNS},
	{NULL, 0, NULL, 0},
};

int rt_cli_parse_run(int argc, char **argv, struct rt_cli_run *o,
		     struct orch_err *e)
{
	memset(o, 0, sizeof(*o));
	rt_spec_init(&o->spec);
	struct rt_spec *s = &o->spec;
	int r = 0;
	optind = 1;
	opterr = 0;
	int c;
	while (r == 0 && (c = getopt_long(argc, argv, "+", run_opts, NULL)) != -1) {
		int64_t v;
		char *end;
		switch (c) {
		case OPT_ROOTFS: strv_push(&s->lowers, optarg); break;
		case OPT_RW: o->rw = optarg; break;
		case OPT_HOSTNAME: s->hostname = optarg; break;
		case OPT_ENV:
			if (!strchr(optarg, '=')) {
				const char *val = getenv(optarg);
				if (!val)
					break; /* docker: unset stays unset */
				_cleanup_free_ char *kv = xasprintf("%s=%s", optarg, val);
				strv_push(&s->env, kv);
			} else {
				strv_push(&s->env, optarg);
			}
			break;
		case OPT_WORKDIR:
			if (optarg[0] != '/')
				r = err_set(e, EINVAL, "--workdir %s is not absolute", optarg);
			s->workdir = optarg;
			break;
		case OPT_USER:
			r = parse_user(s, optarg, e);
			o->user_set = true;
			break;
		case OPT_IMAGE: o->image = optarg; break;
		case OPT_VOLUME: strv_push(&o->volumes, optarg); break;
		case OPT_MOUNT: r = parse_bind(s, optarg, e); break;
		case OPT_TMPFS: r = parse_tmpfs(s, optarg, e); break;
		case OPT_READONLY: s->readonly_rootfs = true; break;
		case OPT_MEMORY:
		case OPT_MEMSWAP:
			if (c == OPT_MEMSWAP && streq(optarg, "-1")) {
				s->limits.memory_swap = -1;
				break;
			}
			if (parse_bytes(optarg, &v) < 0 || v <= 0)
				r = err_set(e, EINVAL, "--%s %s: bad size",
					    c == OPT_MEMORY ? "memory" : "memory-swap", optarg);
			else if (c == OPT_MEMORY)
				s->limits.memory = v;
			else
				s->limits.memory_swap = v;
			break;
		case OPT_CPUS:
			s->limits.cpus = strtod(optarg, &end);
			if (end == optarg || *end || !(s->limits.cpus > 0) ||
			    s->limits.cpus > 1024)
				r = err_set(e, EINVAL, "--cpus %s: want a positive number", optarg);
			break;
		case OPT_SHARES:
			s->limits.cpu_shares = strtoull(optarg, &end, 10);
			if (end == optarg || *end || !s->limits.cpu_shares)
				r = err_set(e, EINVAL, "--cpu-shares %s: bad number", optarg);
			break;
		case OPT_PIDS:
			s->limits.pids = strtoll(optarg, &end, 10);
			if (end == optarg || *end || s->limits.pids <= 0)
				r = err_set(e, EINVAL, "--pids %s: want a positive number", optarg);
			break;
		case OPT_CAPADD: strv_push(&s->cap_add, optarg); break;
		case OPT_CAPDROP: strv_push(&s->cap_drop, optarg); break;
		case OPT_NOSECCOMP: s->no_seccomp = true; break;
		case OPT_SECCOMP: s->seccomp_profile = optarg; break;
		case OPT_INIT: s->init = true; break;
		case OPT_NETNS:
			s->netns_path = optarg;
			s->namespaces &= ~(unsigned)RT_NS_NET;
			break;
		case OPT_NET:
			if (streq(optarg, "host"))
				s->namespaces &= ~(unsigned)RT_NS_NET;
			else if (streq(optarg, "none"))
				s->namespaces |= RT_NS_NET;
			else
				r = err_set(e, EINVAL, "--net %s: want host or none", optarg);
			break;
		case OPT_DETACH: o->detach = true; break;
		case OPT_NAME:
			if (!rt_id_valid(optarg))
				r = err_set(e, EINVAL, "--name %s: use [A-Za-z0-9][A-Za-z0-9_.-]*", optarg);
			o->id = xstrdup(optarg);
			break;
		case OPT_PRIV: s->privileged = true; break;
		case OPT_SYSCTL: strv_push(&s->sysctls, optarg); break;
		case OPT_DEVICE: {
			struct rt_device d;
			r = rt_device_parse(optarg, &d, e);
			rt_device_clear(&d);
			strv_push(&s->devices, optarg);
			break;
		}
		case OPT_DEVRULE:
			r = rt_device_rule_check(optarg, e);
			strv_push(&s->device_rules, optarg);
			break;
		case OPT_USERNS: {
			/* BASE[:COUNT]: ids 0.. map to BASE.., 65536 of them */
			unsigned long long b = strtoull(optarg, &end, 10), n = 65536;
			if (end != optarg && *end == ':') {
				const char *c = end + 1;
				n = strtoull(c, &end, 10);
				if (end == c)
					n = 0;
			}
			if (end == optarg || *end || n == 0 || b + n > UINT32_MAX) {
				r = err_set(e, EINVAL, "--userns %s: want BASE[:COUNT] (host ids)", optarg);
				break;
			}
			o->idmap = (struct rt_idmap){0, (uint32_t)b, (uint32_t)n};
			s->uid_map = s->gid_map = &o->idmap;
			s->n_uid_map = s->n_gid_map = 1;
			s->namespaces |= RT_NS_USER;
			break;
		}
		case OPT_STOPSIG:
			s->stop_signal = parse_signal(optarg);
			if (s->stop_signal <= 0)
				r = err_set(e, EINVAL, "--stop-signal %s: unknown signal", optarg);
			break;
		default:
			r = err_set(e, EINVAL, "unknown or incomplete option %s",
				    argv[optind - 1]);
			break;
		}
	}
	/* An image gives a default command and root. */
	if (r == 0 && optind >= argc && !o->image)
		r = err_set(e, EINVAL, "no command given");
	if (r == 0 && !o->rw && !s->lowers && !o->image)
		r = err_set(e, EINVAL, "give a root filesystem with --rootfs, --rw or --image");
	if (r == 0 && o->rw && s->lowers)
		r = err_set(e, EINVAL, "--rootfs and --rw are exclusive");
	if (r < 0) {
		rt_cli_run_clear(o);
		return r;
	}
	s->rootfs = o->rw;
	for (size_t i = 0; i < s->n_mounts; i++)
		if ((s->namespaces & RT_NS_USER) &&
		    s->mounts[i].type == RT_MOUNT_BIND)
			s->mounts[i].idmap = RT_IDMAP_HOST;
	s->argv = strv_copy(argv + optind);
	if (!o->id) {
		char id[65];
		random_id(id);
		o->id = xstrdup(id);
	}
	s->id = o->id;
	return 0;
}
