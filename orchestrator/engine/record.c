/* A compose service -> the container record the supervisor runs from:
 * the image's defaults overridden by the service, as docker does, and the
 * config hash that says whether a running container is still what the
 * file asks for. */
#include "orchestrator/engine/engine.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <strings.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>



/* Opens path inside one layer without leaving it (symlinks resolve
 * against the layer's root). */
static int layer_open(const char *layer, const char *path, int flags)
{
	_cleanup_close_ int root =
		open(layer, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
}

static bool layers_have(char *const *lowers, const char *path)
{
	for (size_t i = 0; lowers && lowers[i]; i++) {
		int fd = layer_open(lowers[i], path, O_PATH);
		if (fd >= 0) {
			close(fd);
			return true;
		}
	}
	return false;
}

static bool command_found(char *const *lowers, const char *path,
			  const char *cmd)
{
	if (strchr(cmd, '/'))
		return layers_have(lowers, cmd);
	_cleanup_free_ char *dup = xstrdup(path);
	char *save = NULL;
	for (char *d = strtok_r(dup, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *full = xasprintf("%s/%s", d, cmd);
		if (layers_have(lowers, full))
			return true;
	}
	return false;
}

bool image_has_command(char *const *lowers, char *const *env,
		       const char *cmd)
{
	if (!lowers || !lowers[0])
		return true;
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/"
			   "bin:/sbin:/bin";
	for (size_t i = 0; env && env[i]; i++)
		if (startswith(env[i], "PATH="))
			path = env[i] + 5;
	/* Services share images and commands: the last answers are kept
	 * (a layer does not change once stored). */
	static struct keep kept;
	struct strbuf k;
	sb_init(&k);
	for (size_t i = 0; lowers[i]; i++)
		sb_printf(&k, "%s\n", lowers[i]);
	sb_printf(&k, "%s\n%s", path, cmd);
	union kept v;
	if (!keep_get(&kept, k.buf, &v)) {
		v.num = command_found(lowers, path, cmd);
		keep_put(&kept, k.buf, v);
	}
	sb_free(&k);
	return v.num;
}

/* file (/etc/passwd, /etc/group) of the uppermost layer that has it. */
static FILE *layers_fopen(char *const *lowers, const char *file)
{
	for (size_t i = 0; lowers && lowers[i]; i++) {
		int fd = layer_open(lowers[i], file, O_RDONLY);
		if (fd < 0)
			continue;
		FILE *f = fdopen(fd, "re");
		if (!f)
			close(fd);
		return f;
	}
	return NULL;
}

/* The fields of the next line of f ("a:b:c:d"; missing ones ""). */
static bool next_entry(FILE *f, char *line, size_t size, char *fields[4])
{
	if (!fgets(line, (int)size, f))
		return false;
	line[strcspn(line, "\n")] = '\0';
	char *p = line;
	for (int k = 0; k < 4; k++) {
		fields[k] = p;
		p += strcspn(p, ":");
		if (*p)
			*p++ = '\0';
	}
	return true;
}

/* "name[:group]" or "uid[:gid]" -> ids, names looked up in the image's
 * /etc/passwd and /etc/group (the uppermost layer that has them). */
static int lookup_id(char *const *lowers, const char *file, const char *name,
		     int field, long *out)
{
	char *end;
	long v = strtol(name, &end, 10);
	if (*name && !*end) {
		*out = v;
		return 0;
	}
	_cleanup_fclose_ FILE *f = layers_fopen(lowers, file);
	char line[1024], *fields[4];
	while (f && next_entry(f, line, sizeof(line), fields))
		if (streq(fields[0], name) && *fields[field]) {
			*out = strtol(fields[field], NULL, 10);
			return 0;
		}
	return -ENOENT;
}

/* The supplementary groups of the container's process, as docker gives
 * them: those of the image's /etc/group that list user as a member, then
 * group_add's (numbers, or names looked up there). */
static int resolve_groups(char *const *lowers, const char *user,
			  char *const *add, json_t *spec, struct orch_err *e)
{
	json_t *a = json_array();
	_cleanup_fclose_ FILE *f =
	    user ? layers_fopen(lowers, "/etc/group") : NULL;
	char line[4096], *fields[4];
	while (f && next_entry(f, line, sizeof(line), fields)) {
		char *save = NULL;
		for (char *m = strtok_r(fields[3], ",", &save); m;
		     m = strtok_r(NULL, ",", &save))
			if (streq(m, user) && *fields[2])
				json_array_append_new(
				    a, json_integer(strtol(fields[2], NULL, 10)));
	}
	for (size_t i = 0; add && add[i]; i++) {
		long gid;
		if (lookup_id(lowers, "/etc/group", add[i], 2, &gid) < 0 ||
		    gid < 0 || gid > UINT32_MAX - 1) {
			json_decref(a);
			return err_set(e, ENOENT,
				       "group_add: group \"%s\" not found in "
				       "the image's /etc/group",
				       add[i]);
		}
		json_array_append_new(a, json_integer(gid));
	}
	if (json_array_size(a))
		json_object_set_new(spec, "groups", a);
	else
		json_decref(a);
	return 0;
}

static int resolve_user(char *const *lowers, const char *user, json_t *spec,
			struct orch_err *e)
{
	if (!user || !*user)
		return 0;
	_cleanup_free_ char *u = xstrdup(user);
	char *g = strchr(u, ':');
	if (g)
		*g++ = '\0';
	long uid = 0, gid = 0;
	if (lookup_id(lowers, "/etc/passwd", u, 2, &uid) < 0)
		return err_set(e, ENOENT,
			       "user \"%s\" not found in the image's "
			       "/etc/passwd",
			       u);
	if (g) {
		if (lookup_id(lowers, "/etc/group", g, 2, &gid) < 0)
			return err_set(e, ENOENT,
				       "group \"%s\" not found in the image's "
				       "/etc/group",
				       g);
	} else if (lookup_id(lowers, "/etc/passwd", u, 3, &gid) < 0)
		gid = 0;
	json_object_set_new(spec, "uid", json_integer(uid));
	json_object_set_new(spec, "gid", json_integer(gid));
	return 0;
}

/* "/run:size=64m,mode=1777" */
static json_t *tmpfs_mount(const char *spec)
{
	_cleanup_free_ char *s = xstrdup(spec);
	char *opts = strchr(s, ':');
	if (opts)
		*opts++ = '\0';
	json_t *m = json_pack("{s:s, s:s}", "type", "tmpfs", "target", s);
	char *save = NULL;
	for (char *o = opts ? strtok_r(opts, ",", &save) : NULL; o;
	     o = strtok_r(NULL, ",", &save)) {
		int64_t v;
		if (startswith(o, "size=") && parse_bytes(o + 5, &v) == 0)
			json_object_set_new(m, "size", json_integer(v));
		else if (startswith(o, "mode="))
			json_object_set_new(
				m, "mode",
				json_integer(strtol(o + 5, NULL, 8)));
		else if (streq(o, "ro"))
			json_object_set_new(m, "readonly", json_true());
	}
	return m;
}

static int64_t ns_to_ms(int64_t ns, int64_t dflt)
{
	return ns < 0 ? dflt : ns / 1000000;
}

static json_t *healthcheck_json(const struct service *s,
				const struct rt_image *img)
{
	const struct m_healthcheck *h = &s->healthcheck;
	if (h->present && h->disable)
		return NULL;
	const struct rt_healthcheck *ih =
		img ? img->config.healthcheck : NULL;
	char **test = h->present && h->test ? h->test : ih ? ih->test : NULL;
	if (!test || !test[0] || streq(test[0], "NONE"))
		return NULL;
	int64_t iv = h->present ? h->interval_ns : M_UNSET;
	int64_t to = h->present ? h->timeout_ns : M_UNSET;
	int64_t sp = h->present ? h->start_period_ns : M_UNSET;
	int64_t si = h->present ? h->start_interval_ns : M_UNSET;
	int64_t rt = h->present ? h->retries : M_UNSET;
	if (ih) {
		if (iv < 0 && ih->interval_ns > 0)
			iv = ih->interval_ns;
		if (to < 0 && ih->timeout_ns > 0)
			to = ih->timeout_ns;
		if (sp < 0 && ih->start_period_ns > 0)
			sp = ih->start_period_ns;
		if (si < 0 && ih->start_interval_ns > 0)
			si = ih->start_interval_ns;
		if (rt < 0 && ih->retries > 0)
			rt = ih->retries;
	}
	return json_pack("{s:o, s:I, s:I, s:I, s:I, s:I}", "test",
			 strv_json(test), "interval_ms",
			 (json_int_t)ns_to_ms(iv, 30000), "timeout_ms",
			 (json_int_t)ns_to_ms(to, 30000), "start_period_ms",
			 (json_int_t)ns_to_ms(sp, 0), "start_interval_ms",
			 (json_int_t)ns_to_ms(si, 5000), "retries",
			 (json_int_t)(rt < 0 ? 3 : rt));
}

static char *restart_string(const struct service *s)
{
	if (s->restart.present) {
		switch (s->restart.policy) {
		case M_RESTART_NO:
			return xstrdup("no");
		case M_RESTART_ALWAYS:
			return xstrdup("always");
		case M_RESTART_UNLESS_STOPPED:
			return xstrdup("unless-stopped");
		case M_RESTART_ON_FAILURE:
			return s->restart.max_retries > 0
				       ? xasprintf("on-failure:%lld",
						   (long long)s->restart
							   .max_retries)
				       : xstrdup("on-failure");
		}
	}
	if (s->deploy.present && s->deploy.restart_policy.present) {
		const char *c = s->deploy.restart_policy.condition;
		int64_t n = s->deploy.restart_policy.max_attempts;
		if (!c || streq(c, "any"))
			return xstrdup("always");
		if (streq(c, "on-failure"))
			return n > 0 ? xasprintf("on-failure:%lld",
						 (long long)n)
				     : xstrdup("on-failure");
		return xstrdup("no");
	}
	return xstrdup("no");
}

/* Shell-like rendering of argv for `ps`. */
static char *command_string(char *const *argv)
{
	struct strbuf sb;
	sb_init(&sb);
	for (size_t i = 0; argv && argv[i]; i++) {
		if (i)
			sb_adds(&sb, " ");
		bool plain = *argv[i] && !strpbrk(argv[i], " \t\"'$\\");
		if (plain)
			sb_adds(&sb, argv[i]);
		else
			sb_printf(&sb, "\"%s\"", argv[i]);
	}
	return sb_steal(&sb);
}

/* devices: and device_cgroup_rules:, checked (syntax, and the host's
 * nodes) before anything is created. */
static int devices_json(const struct service *s, json_t *spec,
			struct orch_err *e)
{
	int r = 0;
	const char *key = "devices";
	if (s->devices) {
		r = rt_devices_check(s->devices, e);
		if (r == 0)
			json_object_set_new(spec, "devices", strv_json(s->devices));
	}
	for (size_t i = 0; r == 0 && s->device_cgroup_rules &&
			   s->device_cgroup_rules[i];
	     i++) {
		key = "device_cgroup_rules";
		r = rt_device_rule_check(s->device_cgroup_rules[i], e);
	}
	if (r == 0 && s->device_cgroup_rules)
		json_object_set_new(spec, "device_rules",
				    strv_json(s->device_cgroup_rules));
	if (r < 0) {
		const struct m_pos *p = service_key_pos(s, key);
		err_wrap(e, "%s:%d:%d: service \"%s\"", p->file, p->line,
			 p->col, s->name);
	}
	return r;
}

/* Capabilities that act only in the host's user namespace, or (NET_ADMIN)
 * on the network namespace netd made, which the host's user namespace
 * owns: a remapped container would hold them in name only. */
static const char *const host_only_caps[] = {
	"NET_ADMIN",
	"SYS_MODULE", "SYS_RAWIO",   "SYS_TIME",      "SYS_BOOT",
	"MAC_ADMIN",  "MAC_OVERRIDE", "SYSLOG",	       "WAKE_ALARM",
	"BLOCK_SUSPEND", "AUDIT_CONTROL", "AUDIT_READ", "LINUX_IMMUTABLE",
	"SYS_PACCT",  "PERFMON",     "BPF",
};

/* blkio_config's devices by number, as the kernel names them: each path a
 * block device of the host's. */
static int blkio_json(const struct service *s, json_t *limits,
		      struct orch_err *e)
{
	static const enum rt_blkio_kind kinds[M_BLKIO_NLISTS] = {
	    [M_BLKIO_WEIGHT_DEVICE] = RT_BLKIO_WEIGHT,
	    [M_BLKIO_READ_BPS] = RT_BLKIO_READ_BPS,
	    [M_BLKIO_WRITE_BPS] = RT_BLKIO_WRITE_BPS,
	    [M_BLKIO_READ_IOPS] = RT_BLKIO_READ_IOPS,
	    [M_BLKIO_WRITE_IOPS] = RT_BLKIO_WRITE_IOPS,
	};
	if (s->blkio.weight != M_UNSET)
		json_object_set_new(limits, "blkio_weight",
				    json_integer(s->blkio.weight));
	/* Only when there are some: a spec is part of the config hash. */
	json_auto_t *a = json_array();
	for (int k = 0; k < M_BLKIO_NLISTS; k++)
		for (size_t i = 0; i < s->blkio.n_dev[k]; i++) {
			const struct m_blkio_dev *d = &s->blkio.dev[k][i];
			struct stat st;
			const char *why = stat(d->path, &st) < 0
					      ? strerror(errno)
					  : !S_ISBLK(st.st_mode)
					      ? "not a block device"
					      : NULL;
			if (why)
				return err_set(
				    e, EINVAL,
				    "%s:%d:%d: service \"%s\": blkio_config."
				    "%s: %s: %s",
				    d->pos.file, d->pos.line, d->pos.col,
				    s->name, m_blkio_lists[k], d->path, why);
			json_array_append_new(
			    a, json_pack("{s:i, s:i, s:i, s:I}", "kind",
					 kinds[k], "major", major(st.st_rdev),
					 "minor", minor(st.st_rdev), "value",
					 (json_int_t)d->value));
		}
	if (json_array_size(a))
		json_object_set(limits, "blkio", a);
	return 0;
}

/* A key the service's own user namespace cannot honour: refused at its
 * position (why), with the way out. */
static int host_userns_needed(const struct service *s, const char *key,
			      const char *why, struct orch_err *e)
{
	const struct m_pos *p = service_key_pos(s, key);
	return err_set(e, EPERM,
		       "%s:%d:%d: service \"%s\": %s; set userns_mode: host "
		       "for this service",
		       p->file, p->line, p->col, s->name, why);
}

/* Whether the service runs in the project's user namespace; what it asks
 * for that would mean nothing there is an error. */
static int userns_of(const struct service *s, bool *remap, struct orch_err *e)
{
	struct rt_userns_conf c;
	int r = rt_userns_config(&c, e);
	if (r < 0)
		return r;
	*remap = c.enabled && !s->privileged &&
		 !(s->userns_mode && streq(s->userns_mode, "host"));
	if (*remap && s->device_cgroup_rules && s->device_cgroup_rules[0])
		return host_userns_needed(
		    s, "device_cgroup_rules",
		    "device_cgroup_rules let a container mknod, which its "
		    "user namespace forbids (give the nodes with devices:)",
		    e);
	if (*remap && s->pid && streq(s->pid, "host"))
		return host_userns_needed(
		    s, "pid",
		    "pid: host shows the host's processes, for which a "
		    "container in a user namespace of its own cannot mount "
		    "/proc",
		    e);
	const char *const shared[] = {"pid", "ipc"};
	const char *const mode[] = {s->pid, s->ipc};
	for (size_t i = 0; *remap && i < ARRAY_SIZE(shared); i++)
		if (mode[i] && (startswith(mode[i], "service:") ||
				startswith(mode[i], "container:"))) {
			_cleanup_free_ char *why = xasprintf(
			    "%s: %s shares another container's namespace, "
			    "which a container in a user namespace of its own "
			    "cannot join",
			    shared[i], mode[i]);
			return host_userns_needed(s, shared[i], why, e);
		}
	if (*remap && s->cgroup && streq(s->cgroup, "host"))
		return host_userns_needed(
		    s, "cgroup",
		    "cgroup: host shows the host's cgroups, which a container "
		    "in a user namespace of its own cannot mount",
		    e);
	for (size_t i = 0; *remap && s->cap_add && s->cap_add[i]; i++) {
		const char *n = s->cap_add[i];
		if (!strncasecmp(n, "CAP_", 4))
			n += 4;
		for (size_t k = 0; k < ARRAY_SIZE(host_only_caps); k++)
			if (!strcasecmp(n, host_only_caps[k])) {
				_cleanup_free_ char *why = xasprintf(
				    "cap_add %s acts only outside the "
				    "container's user namespace",
				    s->cap_add[i]);
				return host_userns_needed(s, "cap_add", why, e);
			}
	}
	return 0;
}

int record_template(const struct project *m, const struct service *s,
		    json_t **out, struct orch_err *e)
{
	*out = NULL;
	const struct m_pos *ipos = service_key_pos(s, "image");
	char *ref = s->image;
	_cleanup_free_ char *built = NULL;
	if (!ref) {
		built = xasprintf("%s-%s", m->name, s->name);
		ref = built;
	}
	_cleanup_image_ struct rt_image *img = NULL;
	struct orch_err ie = {0};
	if (rt_image_lookup(ref, &img, &ie) < 0)
		return err_set(e, ENOENT,
			       "%s:%d:%d: service \"%s\": image \"%s\" is not "
			       "present (import or build it first): %s",
			       ipos->file, ipos->line, ipos->col, s->name, ref,
			       ie.msg);
	_cleanup_strv_ char **lowers = rt_image_lowers(img);
	const struct rt_image_config *ic = &img->config;

	json_auto_t *spec = json_object();
	json_object_set_new(spec, "image", json_string(img->id));
	json_object_set_new(spec, "lowers", strv_json(lowers));

	/* An entrypoint given by the service drops the image's CMD, as in
	 * docker. */
	char **ep = s->entrypoint ? s->entrypoint : ic->entrypoint;
	char **cmd = s->command		   ? s->command
		     : s->entrypoint	   ? NULL
					   : ic->cmd;
	_cleanup_strv_ char **argv = xcalloc(1, sizeof(char *));
	for (size_t i = 0; ep && ep[i]; i++)
		strv_push(&argv, ep[i]);
	for (size_t i = 0; cmd && cmd[i]; i++)
		strv_push(&argv, cmd[i]);
	int r;
	if (!argv[0]) {
		const struct m_pos *p = service_key_pos(s, "command");
		r = err_set(e, EINVAL,
			    "%s:%d:%d: service \"%s\": no command (the image "
			    "has none and the service gives none)",
			    p->file, p->line, p->col, s->name);
		return r;
	}
	json_object_set_new(spec, "argv", strv_json(argv));

	_cleanup_strv_ char **env = xcalloc(1, sizeof(char *));
	bool has_path = false;
	for (size_t i = 0; ic->env && ic->env[i]; i++) {
		strv_push(&env, ic->env[i]);
		has_path |= startswith(ic->env[i], "PATH=");
	}
	if (!has_path)
		strv_push(&env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/"
				"sbin:/usr/bin:/sbin:/bin");
	for (size_t i = 0; i < s->environment.n; i++) {
		const struct m_kv *kv = &s->environment.v[i];
		if (!kv->value)
			continue;
		_cleanup_free_ char *line =
			xasprintf("%s=%s", kv->key, kv->value);
		size_t kl = strlen(kv->key);
		bool replaced = false;
		for (size_t k = 0; env[k]; k++)
			if (!strncmp(env[k], kv->key, kl) && env[k][kl] == '=') {
				free(env[k]);
				env[k] = xstrdup(line);
				replaced = true;
			}
		if (!replaced)
			strv_push(&env, line);
	}
	json_object_set_new(spec, "env", strv_json(env));

	if (!image_has_command(lowers, env, argv[0])) {
		const struct m_pos *p = service_key_pos(
			s, s->command ? "command" : "entrypoint");
		r = err_set(e, ENOENT,
			    "%s:%d:%d: service \"%s\": command \"%s\" not "
			    "found in image \"%s\"",
			    p->file, p->line, p->col, s->name, argv[0], ref);
		return r;
	}

	const char *wd = s->working_dir ? s->working_dir : ic->workdir;
	if (wd && *wd)
		json_object_set_new(spec, "workdir", json_string(wd));
	/* keep-id runs as the user unless the service names another, as
	 * podman's does. */
	bool keep_id = s->userns_mode && streq(s->userns_mode, "keep-id");
	const char *user = s->user ? s->user : keep_id ? NULL : ic->user;
	if (keep_id && !s->user) {
		json_object_set_new(spec, "uid", json_integer(host_uid()));
		json_object_set_new(spec, "gid", json_integer(host_gid()));
	}
	r = resolve_user(lowers, user, spec, e);
	if (r < 0) {
		const struct m_pos *p = service_key_pos(s, "user");
		err_wrap(e, "%s:%d:%d: service \"%s\"", p->file, p->line,
			 p->col, s->name);
		return r;
	}
	/* Membership by the user's name ("root" when none is given; none
	 * for a number). */
	_cleanup_free_ char *uname = user && *user
					 ? xstrndup(user, strcspn(user, ":"))
					 : xstrdup("root");
	bool numeric = uname[strspn(uname, "0123456789")] == '\0';
	r = resolve_groups(lowers, numeric ? NULL : uname, s->group_add, spec,
			   e);
	if (r < 0) {
		const struct m_pos *p = service_key_pos(s, "group_add");
		err_wrap(e, "%s:%d:%d: service \"%s\"", p->file, p->line,
			 p->col, s->name);
		return r;
	}
	/* uts: host: the host's hostname, which the container may not set
	 * (docker refuses both together). */
	if (s->uts && streq(s->uts, "host")) {
		if (s->hostname || s->domainname) {
			const struct m_pos *p = service_key_pos(s, "uts");
			return err_set(e, EINVAL,
				       "%s:%d:%d: service \"%s\": uts: host "
				       "takes the host's name: hostname and "
				       "domainname cannot be set with it",
				       p->file, p->line, p->col, s->name);
		}
		char hn[256] = "";
		gethostname(hn, sizeof(hn) - 1);
		json_object_set_new(spec, "uts_host", json_true());
		json_object_set_new(spec, "hostname", json_string(hn));
	} else if (s->uts && !streq(s->uts, "private")) {
		const struct m_pos *p = service_key_pos(s, "uts");
		return err_set(e, EINVAL,
			       "%s:%d:%d: service \"%s\": uts \"%s\": want "
			       "host or private",
			       p->file, p->line, p->col, s->name, s->uts);
	}
	/* ipc: host and pid: host share the host's namespace (and its
	 * /dev/shm); their other forms (a service's, a container's) are
	 * warned of (warn_unapplied). */
	if (s->ipc && streq(s->ipc, "host"))
		json_object_set_new(spec, "ipc_host", json_true());
	if (s->pid && streq(s->pid, "host"))
		json_object_set_new(spec, "pid_host", json_true());
	/* Another container's (service:NAME, container:NAME): found when
	 * the container is made (ctr_setup), its process at each start. */
	if (s->pid && !streq(s->pid, "host"))
		json_object_set_new(spec, "pid_mode", json_string(s->pid));
	if (s->ipc && (startswith(s->ipc, "service:") ||
		       startswith(s->ipc, "container:")))
		json_object_set_new(spec, "ipc_mode", json_string(s->ipc));
	if (s->cgroup && streq(s->cgroup, "host"))
		json_object_set_new(spec, "cgroup_host", json_true());
	if (s->hostname)
		json_object_set_new(spec, "hostname", json_string(s->hostname));
	if (s->domainname)
		json_object_set_new(spec, "domainname",
				    json_string(s->domainname));
	if (s->shm_size > 0)
		json_object_set_new(spec, "shm_size",
				    json_integer(s->shm_size));
	/* -1 is M_UNSET's value too: the key's presence tells. */
	const struct m_pos *oom = service_key_pos(s, "oom_score_adj");
	if (oom != &s->pos) {
		if (s->oom_score_adj < -1000 || s->oom_score_adj > 1000) {
			const struct m_pos *p = oom;
			return err_set(e, EINVAL,
				       "%s:%d:%d: service \"%s\": oom_score_adj "
				       "%lld is not in -1000..1000",
				       p->file, p->line, p->col, s->name,
				       (long long)s->oom_score_adj);
		}
		json_object_set_new(spec, "oom_score_adj",
				    json_integer(s->oom_score_adj));
	}
	/* Read by the supervisor's worker: a pty, or a standard input that
	 * stays open (docker's -t and -i). */
	if (s->tty)
		json_object_set_new(spec, "tty", json_true());
	if (s->stdin_open)
		json_object_set_new(spec, "stdin_open", json_true());
	if (s->read_only)
		json_object_set_new(spec, "readonly_rootfs", json_true());
	if (s->privileged)
		json_object_set_new(spec, "privileged", json_true());
	if (s->init)
		json_object_set_new(spec, "init", json_true());
	if (s->cap_add)
		json_object_set_new(spec, "cap_add", strv_json(s->cap_add));
	if (s->cap_drop)
		json_object_set_new(spec, "cap_drop", strv_json(s->cap_drop));
	r = devices_json(s, spec, e);
	if (r < 0)
		return r;
	bool remap;
	r = userns_of(s, &remap, e);
	if (r < 0)
		return r;
	if (remap)
		json_object_set_new(spec, "userns", json_true());
	else if (keep_id)
		json_object_set_new(spec, "keep_id", json_true());
	if (s->cgroup_parent)
		json_object_set_new(spec, "cgroup_parent",
				    json_string(s->cgroup_parent));
	if (s->sysctls.n) {
		json_t *a = json_array();
		for (size_t i = 0; i < s->sysctls.n; i++)
			json_array_append_new(
				a, json_sprintf("%s=%s", s->sysctls.v[i].key,
						s->sysctls.v[i].value ?: ""));
		json_object_set_new(spec, "sysctls", a);
	}
	if (s->n_ulimits) {
		json_t *a = json_array();
		for (size_t i = 0; i < s->n_ulimits; i++) {
			int res = rlimit_by_name(s->ulimits[i].name);
			if (res >= 0)
				json_array_append_new(
				    a, json_pack("{s:i, s:I, s:I}", "resource",
						 res, "soft",
						 (json_int_t)s->ulimits[i].soft,
						 "hard",
						 (json_int_t)s->ulimits[i].hard));
		}
		json_object_set_new(spec, "rlimits", a);
	}
	struct m_resources lim = service_limits(s);
	json_t *limits = json_object();
	if (lim.memory > 0)
		json_object_set_new(limits, "memory", json_integer(lim.memory));
	if (s->memswap_limit != M_UNSET)
		json_object_set_new(limits, "memory_swap",
				    json_integer(s->memswap_limit));
	/* mem_reservation, else deploy's reservation, as compose maps it. */
	int64_t rsv = s->mem_reservation > 0 ? s->mem_reservation
					      : s->deploy.reservations.memory;
	if (rsv > 0)
		json_object_set_new(limits, "memory_reservation",
				    json_integer(rsv));
	if (lim.cpus > 0)
		json_object_set_new(limits, "cpus", json_real(lim.cpus));
	if (s->cpu_shares > 0)
		json_object_set_new(limits, "cpu_shares",
				    json_integer(s->cpu_shares));
	if (lim.pids > 0)
		json_object_set_new(limits, "pids", json_integer(lim.pids));
	if (s->cpuset)
		json_object_set_new(limits, "cpuset_cpus",
				    json_string(s->cpuset));
	if (s->mem_swappiness != M_UNSET)
		json_object_set_new(limits, "swappiness",
				    json_integer(s->mem_swappiness));
	if (s->oom_kill_disable)
		json_object_set_new(limits, "oom_kill_disable", json_true());
	r = blkio_json(s, limits, e);
	json_object_set_new(spec, "limits", limits);
	if (r < 0)
		return r;

	int sig = SIGTERM;
	const char *ss = s->stop_signal ? s->stop_signal : ic->stop_signal;
	if (ss && *ss) {
		sig = parse_signal(ss);
		if (sig <= 0) {
			const struct m_pos *p = service_key_pos(s, "stop_signal");
			r = err_set(e, EINVAL,
				    "%s:%d:%d: service \"%s\": unknown stop "
				    "signal \"%s\"",
				    p->file, p->line, p->col, s->name, ss);
			return r;
		}
	}
	json_object_set_new(spec, "stop_signal", json_integer(sig));

	/* Mounts whose source does not depend on the container. */
	json_t *mounts = json_array();
	json_t *named = json_array();
	for (size_t i = 0; i < s->n_volumes; i++) {
		const struct m_mount *mt = &s->volumes[i];
		json_t *j = NULL;
		switch (mt->type) {
		case M_MOUNT_BIND:
			j = json_pack("{s:s, s:s, s:s, s:b, s:b}", "type",
				      "bind", "source", mt->source, "target",
				      mt->target, "readonly", mt->read_only,
				      "create", mt->bind_create_host_path);
			if (remap)
				json_object_set_new(j, "idmap", json_true());
			break;
		case M_MOUNT_TMPFS:
			j = json_pack("{s:s, s:s, s:b}", "type", "tmpfs",
				      "target", mt->target, "readonly",
				      mt->read_only);
			if (mt->tmpfs_size > 0)
				json_object_set_new(j, "size",
						    json_integer(mt->tmpfs_size));
			if (mt->tmpfs_mode > 0)
				json_object_set_new(j, "mode",
						    json_integer(mt->tmpfs_mode));
			break;
		case M_MOUNT_VOLUME: {
			const struct volume *v =
				mt->source ? project_volume(m, mt->source)
					   : NULL;
			/* Named volumes get their data directory when the
			 * container is made; anonymous ones a fresh volume. */
			j = json_pack("{s:s, s:s, s:b}", "type", "volume",
				      "target", mt->target, "readonly",
				      mt->read_only);
			if (v) {
				json_object_set_new(j, "volume",
						    json_string(v->name));
				json_array_append_new(named,
						      json_string(v->key));
			}
			break;
		}
		default: {
			const struct m_pos *p = &mt->pos;
			json_decref(mounts);
			json_decref(named);
			r = err_set(e, ENOTSUP,
				    "%s:%d:%d: service \"%s\": this mount "
				    "type is not supported",
				    p->file, p->line, p->col, s->name);
			return r;
		}
		}
		json_array_append_new(mounts, j);
	}
	for (size_t i = 0; s->tmpfs && s->tmpfs[i]; i++)
		json_array_append_new(mounts, tmpfs_mount(s->tmpfs[i]));
	/* The image's VOLUMEs not covered by the service get anonymous
	 * volumes, as docker gives them. */
	for (size_t i = 0; ic->volumes && ic->volumes[i]; i++) {
		bool covered = false;
		size_t k;
		json_t *mj;
		json_array_foreach(mounts, k, mj)
		{
			if (streq(jstr(mj, "target"), ic->volumes[i]))
				covered = true;
		}
		if (!covered)
			json_array_append_new(
				mounts, json_pack("{s:s, s:s}", "type",
						  "volume", "target",
						  ic->volumes[i]));
	}
	json_object_set_new(spec, "mounts", mounts);

	/* Everything else the supervisor and ps need. */
	json_t *rec = json_object();
	json_object_set_new(rec, "service", json_string(s->name));
	json_object_set_new(rec, "image", json_string(ref));
	json_object_set_new(rec, "image_id", json_string(img->id));
	_cleanup_free_ char *cmdline = command_string(argv);
	json_object_set_new(rec, "command", json_string(cmdline));
	_cleanup_free_ char *restart = restart_string(s);
	json_object_set_new(rec, "restart", json_string(restart));
	json_object_set_new(rec, "stop_signal", json_integer(sig));
	json_object_set_new(
		rec, "stop_grace_ms",
		json_integer(ns_to_ms(s->stop_grace_period_ns, 10000)));
	json_t *hc = healthcheck_json(s, img);
	if (hc)
		json_object_set_new(rec, "healthcheck", hc);
	const struct m_kv *ms = NULL, *mf = NULL;
	for (size_t i = 0; i < s->logging.options.n; i++) {
		if (streq(s->logging.options.v[i].key, "max-size"))
			ms = &s->logging.options.v[i];
		if (streq(s->logging.options.v[i].key, "max-file"))
			mf = &s->logging.options.v[i];
	}
	int64_t lmax = 10 << 20;
	if (ms && ms->value)
		parse_bytes(ms->value, &lmax);
	json_object_set_new(rec, "log_max_size", json_integer(lmax));
	if (s->logging.driver && streq(s->logging.driver, "none"))
		json_object_set_new(rec, "log_driver", json_string("none"));
	json_object_set_new(rec, "log_max_files",
			    json_integer(mf && mf->value ? atoi(mf->value) : 2));

	json_t *deps = json_array();
	for (size_t i = 0; i < s->n_depends_on; i++)
		json_array_append_new(deps,
				      json_string(s->depends_on[i].service));
	json_object_set_new(rec, "depends_on", deps);
	/* links: SERVICE:ALIAS, ALIAS resolved by this container alone. */
	json_t *links = json_array();
	for (size_t i = 0; s->links && s->links[i]; i++) {
		const char *colon = strchr(s->links[i], ':');
		if (!colon)
			continue;
		int n = (int)(colon - s->links[i]);
		const char *alias = colon + 1;
		if (*alias && (strlen(alias) != (size_t)n ||
			       strncmp(s->links[i], alias, (size_t)n)))
			json_array_append_new(
			    links,
			    json_sprintf("%s=%.*s", alias, n, s->links[i]));
	}
	if (json_array_size(links))
		json_object_set_new(rec, "links", links);
	else
		json_decref(links);
	json_object_set_new(rec, "named_volumes", named);

	json_t *nets = json_array();
	for (size_t i = 0; i < s->n_networks; i++) {
		const struct m_svc_net *sn = &s->networks[i];
		const struct network *n = project_network(m, sn->name);
		json_t *nj = json_pack("{s:s, s:s, s:o}", "key", sn->name,
				       "network", n ? n->name : sn->name,
				       "aliases", strv_json(sn->aliases));
		if (sn->ipv4_address)
			json_object_set_new(nj, "ipv4_address",
					    json_string(sn->ipv4_address));
		if (sn->ipv6_address)
			json_object_set_new(nj, "ipv6_address",
					    json_string(sn->ipv6_address));
		/* The network's own, else the service's on its first
		 * network (the one holding its default route). */
		const char *mac = sn->mac_address ? sn->mac_address
				  : i == 0	  ? s->mac_address
						  : NULL;
		if (mac)
			json_object_set_new(nj, "mac_address",
					    json_string(mac));
		json_array_append_new(nets, nj);
	}
	json_object_set_new(rec, "networks", nets);
	if (s->network_mode)
		json_object_set_new(rec, "network_mode",
				    json_string(s->network_mode));

	json_t *ports = json_array();
	for (size_t i = 0; i < s->n_ports; i++) {
		const struct m_port *p = &s->ports[i];
		json_array_append_new(
			ports,
			json_pack("{s:s, s:i, s:i, s:i, s:s}", "host_ip",
				  p->host_ip ? p->host_ip : "", "target",
				  p->target, "published", p->published,
				  "published_end", p->published_end,
				  "protocol",
				  p->protocol == M_PROTO_UDP ? "udp" : "tcp"));
	}
	json_object_set_new(rec, "port_specs", ports);
	json_t *eh = json_array();
	for (size_t i = 0; i < s->extra_hosts.n; i++)
		json_array_append_new(
			eh, json_sprintf("%s %s", s->extra_hosts.v[i].value ?: "",
					 s->extra_hosts.v[i].key));
	json_object_set_new(rec, "extra_hosts", eh);
	json_object_set_new(rec, "dns", strv_json(s->dns));
	json_object_set_new(rec, "dns_search", strv_json(s->dns_search));
	json_object_set_new(rec, "dns_opt", strv_json(s->dns_opt));

	json_t *labels = json_object();
	for (size_t i = 0; i < s->labels.n; i++)
		json_object_set_new(labels, s->labels.v[i].key,
				    json_string(s->labels.v[i].value ?: ""));
	json_object_set_new(rec, "labels", labels);
	if (s->n_post_start || s->n_pre_stop)
		json_object_set_new(
		    rec, "hooks",
		    json_pack("{s:o, s:o}", "post_start",
			      hooks_json(s->post_start, s->n_post_start),
			      "pre_stop",
			      hooks_json(s->pre_stop, s->n_pre_stop)));
	json_object_set_new(rec, "spec", move_ptr(spec));

	/* The hash covers everything above: any change recreates. */
	_cleanup_free_ char *canon =
		json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	char hash[65];
	sha256_hex(canon, strlen(canon), hash);
	json_object_set_new(rec, "hash", json_string(hash));
	json_t *lb = json_object_get(rec, "labels");
	json_object_set_new(lb, "com.docker.compose.project",
			    json_string(m->name));
	json_object_set_new(lb, "com.docker.compose.service",
			    json_string(s->name));
	json_object_set_new(lb, "com.docker.compose.config-hash",
			    json_string(hash));
	json_object_set_new(lb, "com.docker.compose.project.working_dir",
			    json_string(m->working_dir ? m->working_dir : ""));
	_cleanup_free_ char *files = NULL;
	{
		struct strbuf sb;
		sb_init(&sb);
		for (size_t i = 0; m->files && m->files[i]; i++)
			sb_printf(&sb, "%s%s", i ? "," : "", m->files[i]);
		files = sb_steal(&sb);
	}
	json_object_set_new(lb, "com.docker.compose.project.config_files",
			    json_string(files));
	json_object_set_new(lb, "com.docker.compose.oneoff",
			    json_string("False"));
	json_object_set_new(lb, "com.docker.compose.image",
			    json_string(img->id));
	*out = rec;
	return 0;
}
