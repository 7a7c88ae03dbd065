/* Per-project state under $ORCH_RUN/projects/<name>/, the project lock,
 * restart policies and backoff. */
#include "orchestrator/engine/engine.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

bool pstate_name_valid(const char *name)
{
	if (!name || !*name || strlen(name) > 128)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') ||
	      (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		      *c == '-' || *c == '_'))
			return false;
	return true;
}

static char *projects_dir(void)
{
	return path_join(orch_run(), "projects");
}

/* Takes an exclusive flock on path.  The file may be unlinked by a `down`
 * that held the lock before us: then we locked a dead inode and retry. */
static int lock_path(const char *path, bool create, int *out,
		     struct orch_err *e)
{
	for (;;) {
		_cleanup_close_ int fd = open(
			path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
		if (fd < 0)
			return err_sys(e, errno, "opening lock %s", path);
		if (RETRY_EINTR(flock(fd, LOCK_EX)) < 0)
			return err_sys(e, errno, "locking %s", path);
		struct stat a, b;
		if (fstat(fd, &a) < 0)
			return err_sys(e, errno, "stat %s", path);
		if (stat(path, &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev) {
			*out = move_fd(fd);
			return 0;
		}
		if (!create)
			return err_set(e, ENOENT, "project removed meanwhile");
	}
}

static int state_open(const char *name, bool create, bool lock,
		      struct pstate *p, struct orch_err *e)
{
	memset(p, 0, sizeof(*p));
	p->lock_fd = -1;
	if (!pstate_name_valid(name))
		return err_set(e, EINVAL,
			       "invalid project name \"%s\": use lowercase "
			       "letters, digits, '-' and '_', starting with a "
			       "letter or digit",
			       name);
	_cleanup_free_ char *pd = projects_dir();
	_cleanup_free_ char *dir = path_join(pd, name);
	struct stat st;
	if (!create && stat(dir, &st) < 0)
		return err_set(e, ENOENT, "no such project: %s", name);
	if (create) {
		int r = mkdir_p(dir, 0711, e);
		if (r < 0)
			return r;
	}
	if (lock) {
		_cleanup_free_ char *lk = path_join(dir, "lock");
		int r = lock_path(lk, create, &p->lock_fd, e);
		if (r < 0)
			return r;
	}
	p->name = xstrdup(name);
	p->dir = move_ptr(dir);
	_cleanup_free_ char *sf = path_join(p->dir, "state.json");
	json_error_t je;
	p->state = json_load_file(sf, 0, &je);
	if (p->state && json_is_object(p->state)) {
		p->exists = true;
		return 0;
	}
	if (p->state || access(sf, F_OK) == 0) {
		json_decref(p->state);
		p->state = NULL;
		log_warn("project %s: unreadable state %s (%s); starting afresh",
			 name, sf, je.text);
	}
	p->state = json_pack("{s:i, s:s, s:[], s:[], s:[]}", "version", 1,
			     "name", name, "networks", "volumes", "containers");
	return 0;
}

int pstate_open(const char *name, bool create, struct pstate *p,
		struct orch_err *e)
{
	return state_open(name, create, true, p, e);
}

int pstate_read(const char *name, struct pstate *p, struct orch_err *e)
{
	return state_open(name, false, false, p, e);
}

void pstate_close(struct pstate *p)
{
	json_decref(p->state);
	p->state = NULL;
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	p->lock_fd = -1;
	free(p->name);
	free(p->dir);
	p->name = p->dir = NULL;
}

int pstate_check_owner(const struct pstate *p, uid_t uid,
			const char *workdir, struct orch_err *e)
{
	if (!p->exists)
		return 0;
	json_t *ou = json_object_get(p->state, "owner_uid");
	if (ou && json_is_integer(ou) && (uid_t)json_integer_value(ou) != uid &&
	    uid != 0)
		return err_set(e, EPERM,
			       "project name \"%s\" is held by user %lld; "
			       "choose another name with -p",
			       p->name, (long long)json_integer_value(ou));
	const char *wd = jstr(p->state, "working_dir");
	if (workdir && wd && !streq(wd, workdir) &&
	    json_array_size(state_containers((struct pstate *)p)) > 0)
		return err_set(e, EBUSY,
			       "project name \"%s\" is already used by %s "
			       "(user %lld); choose another name with -p",
			       p->name, wd,
			       (long long)json_integer_value(ou));
	return 0;
}

void pstate_claim(struct pstate *p, uid_t uid, const char *workdir,
		   char *const *config_files)
{
	json_object_set_new(p->state, "owner_uid", json_integer(uid));
	if (workdir)
		json_object_set_new(p->state, "working_dir",
				    json_string(workdir));
	json_t *cf = json_array();
	for (size_t i = 0; config_files && config_files[i]; i++)
		json_array_append_new(cf, json_string(config_files[i]));
	json_object_set_new(p->state, "config_files", cf);
	if (!json_object_get(p->state, "created"))
		json_object_set_new(p->state, "created",
				    json_integer(time(NULL)));
}

int pstate_save(struct pstate *p, struct orch_err *e)
{
	struct pstate_kept k = {0};
	int r = pstate_save_kept(p, &k, e);
	pstate_kept_clear(&k);
	return r;
}

/* Compact: up saves the state after every few containers it makes, and
 * it grows with them. */
static char *dump_any(json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

int pstate_save_kept(struct pstate *p, struct pstate_kept *k,
		     struct orch_err *e)
{
	json_t *ctrs = json_object_get(p->state, "containers");
	size_t n = json_array_size(ctrs);
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "{");
	const char *key;
	json_t *v;
	json_object_foreach(p->state, key, v)
	{
		if (v == ctrs)
			continue;
		json_t *kj = json_string(key);
		char *kt = dump_any(kj), *vt = dump_any(v);
		json_decref(kj);
		if (!kt || !vt) {
			free(kt);
			free(vt);
			sb_free(&sb);
			return err_set(e, ENOMEM, "serializing state of %s",
				       p->name);
		}
		sb_printf(&sb, "%s:%s,", kt, vt);
		free(kt);
		free(vt);
	}
	sb_adds(&sb, "\"containers\":[");
	/* Kept texts hold while each is still the record at its place (a
	 * reference is kept: no other record takes its address). */
	size_t same = 0;
	while (same < k->n && same < n &&
	       k->rec[same] == json_array_get(ctrs, same))
		same++;
	for (size_t i = same; i < k->n; i++) {
		json_decref(k->rec[i]);
		free(k->txt[i]);
	}
	k->rec = xrealloc(k->rec, (n + 1) * sizeof(*k->rec));
	k->txt = xrealloc(k->txt, (n + 1) * sizeof(*k->txt));
	k->n = same;
	for (size_t i = 0; i < n; i++) {
		if (i >= k->n) {
			json_t *rec = json_array_get(ctrs, i);
			char *t = dump_any(rec);
			if (!t) {
				sb_free(&sb);
				return err_set(e, ENOMEM,
					       "serializing state of %s",
					       p->name);
			}
			k->rec[i] = json_incref(rec);
			k->txt[i] = t;
			k->n = i + 1;
		}
		if (i)
			sb_adds(&sb, ",");
		sb_adds(&sb, k->txt[i]);
	}
	sb_adds(&sb, "]}");
	_cleanup_free_ char *sf = path_join(p->dir, "state.json");
	int r = write_file_atomic(sf, sb.buf, sb.len, 0600, e);
	sb_free(&sb);
	if (r < 0)
		return err_wrap(e, "saving project %s", p->name);
	p->exists = true;
	return 0;
}

void pstate_kept_clear(struct pstate_kept *k)
{
	for (size_t i = 0; i < k->n; i++) {
		json_decref(k->rec[i]);
		free(k->txt[i]);
	}
	free(k->rec);
	free(k->txt);
	*k = (struct pstate_kept){0};
}

char *pstate_path(const struct pstate *p, const char *rel)
{
	return path_join(p->dir, rel);
}

int pstate_remove(struct pstate *p, struct orch_err *e)
{
	int r = rt_idrange_release(p->name, e);
	if (r < 0)
		return r;
	p->idrange_held = false;
	/* The lock file goes last, still locked: a waiting command sees the
	 * inode unlinked and starts afresh. */
	DIR *d = opendir(p->dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
			    streq(de->d_name, "lock"))
				continue;
			_cleanup_free_ char *sub = path_join(p->dir, de->d_name);
			r = rm_rf(sub, e);
			if (r < 0) {
				closedir(d);
				return err_wrap(e, "removing project %s",
						p->name);
			}
		}
		closedir(d);
	}
	_cleanup_free_ char *lock = path_join(p->dir, "lock");
	unlink(lock);
	if (rmdir(p->dir) < 0 && errno != ENOENT)
		return err_sys(e, errno, "removing %s", p->dir);
	p->exists = false;
	return 0;
}

int pstate_list(char ***names, struct orch_err *e)
{
	*names = NULL;
	_cleanup_free_ char *pd = projects_dir();
	DIR *d = opendir(pd);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return err_sys(e, errno, "listing %s", pd);
	}
	struct dirent *de;
	while ((de = readdir(d)))
		if (pstate_name_valid(de->d_name))
			strv_push(names, de->d_name);
	closedir(d);
	if (*names) {
		size_t n = strv_len(*names);
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 &&
					   strcmp((*names)[j - 1], (*names)[j]) > 0;
			     j--) {
				char *t = (*names)[j];
				(*names)[j] = (*names)[j - 1];
				(*names)[j - 1] = t;
			}
	}
	return 0;
}

json_t *state_containers(struct pstate *p)
{
	json_t *c = json_object_get(p->state, "containers");
	if (!json_is_array(c)) {
		c = json_array();
		json_object_set_new(p->state, "containers", c);
	}
	return c;
}

/* The key of a service's container number in "anon_kept". */
static char *kept_key(json_t *rec)
{
	return xasprintf("%s#%lld", jstr(rec, "service") ?: "",
			 (long long)jint(rec, "number", 0));
}

void state_anon_keep(struct pstate *p, json_t *rec, json_t *targets)
{
	json_t *k = json_object_get(p->state, "anon_kept");
	if (!json_is_object(k)) {
		k = json_object();
		json_object_set_new(p->state, "anon_kept", k);
	}
	_cleanup_free_ char *key = kept_key(rec);
	json_object_set_new(k, key, json_deep_copy(targets));
}

json_t *state_anon_kept(struct pstate *p, json_t *rec)
{
	_cleanup_free_ char *key = kept_key(rec);
	return json_object_get(json_object_get(p->state, "anon_kept"), key);
}

bool state_anon_drop(struct pstate *p, json_t *rec)
{
	json_t *k = json_object_get(p->state, "anon_kept");
	_cleanup_free_ char *key = kept_key(rec);
	bool had = json_object_del(k, key) == 0;
	if (had && !json_object_size(k))
		json_object_del(p->state, "anon_kept");
	return had;
}

json_t *state_container_find(struct pstate *p, const char *name_or_id)
{
	size_t i;
	json_t *c;
	json_array_foreach(state_containers(p), i, c)
	{
		const char *n = jstr(c, "name"), *id = jstr(c, "id");
		if ((n && streq(n, name_or_id)) || (id && streq(id, name_or_id)))
			return c;
	}
	return NULL;
}

int state_container_lookup(struct pstate *p, const char *ref, json_t **out,
			   struct orch_err *e)
{
	json_t *hit = state_container_find(p, ref);
	if (hit) {
		*out = hit;
		return 0;
	}
	size_t i, n = 0;
	json_t *c;
	json_array_foreach(state_containers(p), i, c)
	{
		const char *id = jstr(c, "id");
		if (id && startswith(id, ref)) {
			hit = c;
			n++;
		}
	}
	if (n == 0)
		return err_set(e, ENOENT, "no such container: %s", ref);
	if (n > 1)
		return err_set(e, EEXIST, "container id prefix %s is ambiguous",
			       ref);
	*out = hit;
	return 0;
}

const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int64_t jint(const json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return dflt;
}

bool jbool(const json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

json_t *strv_json(char *const *v)
{
	json_t *a = json_array();
	for (size_t i = 0; v && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

char **jstrv(const json_t *o, const char *key)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a))
		return NULL;
	char **v = xcalloc(1, sizeof(char *));
	size_t i;
	json_t *s;
	json_array_foreach(a, i, s)
	{
		if (json_is_string(s))
			strv_push(&v, json_string_value(s));
	}
	return v;
}

bool pstate_open_networks(struct pstate *ps)
{
	return json_is_true(json_object_get(ps->state, "open_networks"));
}
