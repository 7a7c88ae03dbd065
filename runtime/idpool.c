/* The host-wide pool of user-namespace id ranges: each owner (a owner
 * whose containers are remapped, from its first up to its down; the
 * builder) holds one range of RT_IDRANGE_SIZE uids and gids.  The pool is the subordinate range of the
 * user "orch" in /etc/subuid and /etc/subgid, else the "userns" range of
 * $ORCH_ROOT/orch.json, else orch's default.  Held ranges are recorded in
 * $ORCH_ROOT/userns.json, under a lock and written atomically, before any
 * container uses them, so a crash loses none; each owner's last range
 * is remembered, and given back to it when free, so that its volumes
 * (owned by the range) keep their owners across down and up. */
#include "runtime/runtime.h"

#include <jansson.h>

#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>

/* Default pool: 2^30 up to the top of the range systemd sets apart for
 * containers (1879048191): 12288 owners. */
#define POOL_DEFAULT_START 1073741824u
#define POOL_DEFAULT_COUNT 805306368u

/* What an /etc/subuid-style file says: the range of a user (by name or
 * uid), and the first entry of another user that meets the default
 * pool. */
struct subids {
	bool found;
	uint32_t start, count;
	char clash[64]; /* that user, "" when none */
};

/* "who:start:count" -> its parts: -1 without the two colons (who not
 * set), 0 when the numbers do not read, 1 when something follows count,
 * 2 for exactly that. */
static int subid_parse(char *line, char **who, unsigned long long *start,
		       unsigned long long *count)
{
	char *c1 = strchr(line, ':');
	char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2)
		return -1;
	*c1 = '\0';
	*who = line;
	char *end;
	*start = strtoull(c1 + 1, &end, 10);
	if (end == c1 + 1 || end != c2)
		return 0;
	*count = strtoull(c2 + 1, &end, 10);
	if (end == c2 + 1)
		return 0;
	return *end ? 1 : 2;
}

/* UID_BY_NAME for subid_scan: the user's uid is looked up (through NSS,
 * which loads its modules) only if an entry names a user by number. */
#define UID_BY_NAME ((uid_t)-2)

/* Whether who, an entry's user, is user (of the given uid, or
 * UID_BY_NAME: looked up here, once). */
static bool subid_is(const char *who, const char *user, uid_t *uid)
{
	if (streq(who, user))
		return true;
	if (*who < '0' || *who > '9')
		return false;
	if (*uid == UID_BY_NAME) {
		struct passwd *pw = getpwnam(user);
		*uid = pw ? pw->pw_uid : (uid_t)-1;
	}
	char uidtxt[16];
	snprintf(uidtxt, sizeof(uidtxt), "%u", (unsigned)*uid);
	return *uid != (uid_t)-1 && streq(who, uidtxt);
}

static int subid_scan(const char *path, const char *user, uid_t uid,
		      struct subids *s, struct orch_err *e)
{
	*s = (struct subids){0};
	_cleanup_free_ char *text = NULL;
	struct orch_err re = {0};
	if (read_file(path, &text, NULL, &re) < 0)
		return re.code == ENOENT ? 0 : err_set(e, re.code, "%s", re.msg);
	int line = 0;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		line++;
		char *who;
		unsigned long long st = 0, n = 0;
		int k = subid_parse(l, &who, &st, &n);
		if (k < 0)
			continue;
		if (!subid_is(who, user, &uid)) {
			if (k > 0 && !*s->clash &&
			    st < (unsigned long long)POOL_DEFAULT_START + POOL_DEFAULT_COUNT &&
			    st + n > POOL_DEFAULT_START)
				snprintf(s->clash, sizeof(s->clash), "%s", who);
			continue;
		}
		if (s->found)
			continue;
		if (k != 2 || n < RT_IDRANGE_SIZE || st + n > UINT32_MAX || st == 0)
			return err_set(e, EINVAL,
				       "%s:%d: the range of user %s must be "
				       "START:COUNT with COUNT >= %u",
				       path, line, user, RT_IDRANGE_SIZE);
		*s = (struct subids){true, (uint32_t)st, (uint32_t)n, ""};
	}
	return 0;
}

static int config_read(struct rt_userns_conf *c, struct orch_err *e)
{
	*c = (struct rt_userns_conf){.enabled = true,
				  .start = POOL_DEFAULT_START,
				  .count = POOL_DEFAULT_COUNT,
				  .source = "orch's default"};
	if (rootless()) {
		/* Containers share the user's own user namespace. */
		c->enabled = false;
		c->source = "the user's /etc/subuid range";
		return 0;
	}
	const char *env = getenv("ORCH_USERNS");
	if (env && *env && !streq(env, "host") && !streq(env, "remap"))
		return err_set(e, EINVAL,
			       "ORCH_USERNS=%s: want host or remap", env);
	if (env && streq(env, "host"))
		c->enabled = false;
	/* orch.json: {"userns": "host"} or {"userns": {"start": N,
	 * "count": M}} */
	_cleanup_free_ char *conf = path_join(orch_root(), "orch.json");
	json_error_t je;
	json_auto_t *j = json_load_file(conf, 0, &je);
	if (!j && access(conf, F_OK) == 0)
		return err_set(e, EINVAL, "%s:%d:%d: %s", conf, je.line,
			       je.column, je.text);
	json_t *u = j ? json_object_get(j, "userns") : NULL;
	bool conf_range = false;
	if (u && json_is_string(u) && streq(json_string_value(u), "host")) {
		if (!env || !*env)
			c->enabled = false;
	} else if (json_is_object(u)) {
		json_t *s = json_object_get(u, "start"),
		       *n = json_object_get(u, "count");
		json_int_t sv = json_integer_value(s), nv = json_integer_value(n);
		if (!json_is_integer(s) || !json_is_integer(n) || sv <= 0 ||
		    nv < RT_IDRANGE_SIZE || sv + nv > (json_int_t)UINT32_MAX)
			return err_set(e, EINVAL,
				       "%s: \"userns\" wants {\"start\": N, "
				       "\"count\": M} with N > 0 and M >= %u "
				       "(or \"host\")",
				       conf, RT_IDRANGE_SIZE);
		c->start = (uint32_t)sv;
		c->count = (uint32_t)nv;
		c->source = "orch.json";
		conf_range = true;
	} else if (u) {
		return err_set(e, EINVAL,
			       "%s: \"userns\" wants \"host\" or {\"start\": N, "
			       "\"count\": M}",
			       conf);
	}
	struct subids su = {0}, sg = {0};
	int r = subid_scan("/etc/subuid", "orch", UID_BY_NAME, &su, e);
	if (r == 0)
		r = subid_scan("/etc/subgid", "orch", UID_BY_NAME, &sg, e);
	if (r < 0)
		return r;
	if (su.found || sg.found) {
		if (!su.found || !sg.found || su.start != sg.start ||
		    su.count != sg.count)
			return err_set(e, EINVAL,
				       "user orch needs the same range in "
				       "/etc/subuid and /etc/subgid");
		c->start = su.start;
		c->count = su.count;
		c->source = "/etc/subuid";
	} else if (!conf_range && c->enabled && (*su.clash || *sg.clash)) {
		/* The default must not take ids a user was given. */
		return err_set(e, EEXIST,
			       "%s gives ids of orch's default user-namespace "
			       "pool (%u-%u) to %s: give user orch a range of "
			       "its own there, or set \"userns\" in %s",
			       *su.clash ? "/etc/subuid" : "/etc/subgid",
			       c->start, c->start + c->count - 1,
			       *su.clash ? su.clash : sg.clash, conf);
	}
	return 0;
}

int rt_subid_range(const char *path, const char *user, uid_t uid,
		   uint32_t *start, uint32_t *count, struct orch_err *e)
{
	struct subids s = {0};
	int r = subid_scan(path, user, uid, &s, e);
	if (r < 0)
		return r;
	if (!s.found)
		return err_set(e, ENOENT, "%s gives user %s no range", path,
			       user);
	*start = s.start;
	*count = s.count;
	return 0;
}

/* Read once per process (an up asks for every service), unless
 * ORCH_ROOT or ORCH_USERNS changed. */
int rt_userns_config(struct rt_userns_conf *c, struct orch_err *e)
{
	static struct rt_userns_conf conf;
	static struct orch_err err;
	static char *key;
	const char *env = getenv("ORCH_USERNS");
	_cleanup_free_ char *k = xasprintf("%s\n%s", orch_root(), env ? env : "");
	if (!key || !streq(key, k)) {
		free(key);
		key = move_ptr(k);
		err = (struct orch_err){0};
		config_read(&conf, &err);
	}
	*c = conf;
	if (err.code) {
		*e = err;
		return -err.code;
	}
	return 0;
}

static int pool_lock(struct orch_err *e)
{
	_cleanup_free_ char *path = path_join(orch_root(), "userns.lock");
	int r = mkdir_p(orch_root(), 0711, e);
	if (r < 0)
		return r;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_sys(e, errno, "opening %s", path);
	if (RETRY_EINTR(flock(fd, LOCK_EX)) < 0) {
		int saved = errno;
		close(fd);
		return err_sys(e, saved, "locking %s", path);
	}
	return fd;
}

static json_t *pool_read(const char *path, struct orch_err *e)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j) {
		if (access(path, F_OK) == 0) {
			err_set(e, EINVAL, "%s:%d:%d: %s", path, je.line,
				je.column, je.text);
			return NULL;
		}
		j = json_object();
	}
	if (!json_is_object(json_object_get(j, "held")))
		json_object_set_new(j, "held", json_object());
	if (!json_is_object(json_object_get(j, "last")))
		json_object_set_new(j, "last", json_object());
	return j;
}

/* On the disk before it is used when an owner's last range changes: that
 * record keeps its volumes' owners from going to another owner.  Which
 * owners hold a range matters only while their containers run, which a
 * power cut ends: a hold taken again of the owner's last range, and a
 * release, need not wait for the disk (a release lost leaves the range
 * held, until that owner's next down). */
static int pool_write(const char *path, json_t *j, bool durable,
		      struct orch_err *e)
{
	_cleanup_free_ char *text = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1));
	return durable ? write_file_atomic(path, text, strlen(text), 0600, e)
		       : write_file_replace(path, text, strlen(text), 0600, e);
}

static bool base_taken(json_t *map, const char *owner, json_int_t base)
{
	const char *k;
	json_t *v;
	json_object_foreach(map, k, v) if (!streq(k, owner) &&
					   json_integer_value(v) == base) return true;
	return false;
}

static bool base_valid(const struct rt_userns_conf *c, json_int_t b)
{
	return b >= c->start && b + RT_IDRANGE_SIZE <= (json_int_t)c->start + c->count &&
	       (b - c->start) % RT_IDRANGE_SIZE == 0;
}

int rt_idrange_acquire(const char *owner, uint32_t *base, struct orch_err *e)
{
	struct rt_userns_conf c;
	int r = rt_userns_config(&c, e);
	if (r < 0)
		return r;
	int lock = pool_lock(e);
	if (lock < 0)
		return lock;
	_cleanup_free_ char *path = path_join(orch_root(), "userns.json");
	json_t *j = pool_read(path, e);
	if (!j) {
		close(lock);
		return -EINVAL;
	}
	json_t *held = json_object_get(j, "held"), *last = json_object_get(j, "last");
	json_t *mine = json_object_get(held, owner);
	json_int_t b = -1;
	if (mine && base_valid(&c, json_integer_value(mine))) {
		*base = (uint32_t)json_integer_value(mine);
		json_decref(j);
		close(lock);
		return 0;
	}
	json_t *prev = json_object_get(last, owner);
	if (prev && base_valid(&c, json_integer_value(prev)) &&
	    !base_taken(held, owner, json_integer_value(prev)))
		b = json_integer_value(prev);
	/* First a range nobody used last, then any free one. */
	for (int pass = 0; pass < 2 && b < 0; pass++)
		for (json_int_t k = c.start;
		     k + RT_IDRANGE_SIZE <= (json_int_t)c.start + c.count;
		     k += RT_IDRANGE_SIZE)
			if (!base_taken(held, owner, k) &&
			    (pass || !base_taken(last, owner, k))) {
				b = k;
				break;
			}
	if (b < 0) {
		r = err_set(e, ENOSPC,
			    "no user-namespace id range is free (the pool from "
			    "%s, %u-%u, is held by other owners)",
			    c.source, c.start, c.start + c.count - 1);
	} else {
		bool moved = !prev || json_integer_value(prev) != b;
		json_object_set_new(held, owner, json_integer(b));
		json_object_set_new(last, owner, json_integer(b));
		r = pool_write(path, j, moved, e);
		*base = (uint32_t)b;
	}
	json_decref(j);
	close(lock);
	return r;
}

int rt_idrange_release(const char *owner, struct orch_err *e)
{
	int lock = pool_lock(e);
	if (lock < 0)
		return lock;
	_cleanup_free_ char *path = path_join(orch_root(), "userns.json");
	int r = 0;
	json_t *j = pool_read(path, e);
	if (!j)
		r = -EINVAL;
	else if (json_object_get(json_object_get(j, "held"), owner)) {
		json_object_del(json_object_get(j, "held"), owner);
		r = pool_write(path, j, false, e);
	}
	json_decref(j);
	close(lock);
	return r;
}

int rt_idrange_held(const char *owner, uint32_t *base)
{
	_cleanup_free_ char *path = path_join(orch_root(), "userns.json");
	json_auto_t *j = json_load_file(path, 0, NULL);
	json_t *v = json_object_get(json_object_get(j, "held"), owner);
	if (!json_is_integer(v))
		return -ENOENT;
	*base = (uint32_t)json_integer_value(v);
	return 0;
}
