/* develop.watch: `orch watch` and `up --watch`.
 *
 * Every rule's path is watched with inotify (directories recursively, new
 * ones as they appear).  Changes are gathered until the files have been
 * quiet for a moment (debounced), then each service's rules act on them:
 * sync copies the changed files into the service's running containers
 * (deleted ones are deleted there), sync+restart does that and restarts
 * them, sync+exec runs the rule's exec hook in them after, restart only
 * restarts them, rebuild builds the service's image again and recreates
 * its containers.  A rule counts the files its include patterns name
 * (all without) but those it ignores; initial_sync syncs those as
 * watching starts.  Files are written into a container through its root,
 * every path resolved inside it (openat2 RESOLVE_IN_ROOT), so that no
 * symlink a container plants leads a write out of it. */
#include "orchestrator/build/build.h"
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define QUIET_MS 300

static volatile sig_atomic_t stop;
static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

struct watcher {
	int fd;
	char **dirs; /* by watch descriptor */
	int n_dirs;
	char **changed; /* absolute paths since the last batch */
};

static void watch_dir(struct watcher *w, const char *dir, int depth)
{
	if (depth > 64)
		return;
	int wd = inotify_add_watch(w->fd, dir,
				   IN_CLOSE_WRITE | IN_CREATE | IN_DELETE |
				       IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
				       IN_ONLYDIR);
	if (wd < 0)
		return;
	if (wd >= w->n_dirs) {
		w->dirs = xrealloc(w->dirs, (size_t)(wd + 1) * sizeof(char *));
		for (int i = w->n_dirs; i <= wd; i++)
			w->dirs[i] = NULL;
		w->n_dirs = wd + 1;
	}
	free(w->dirs[wd]);
	w->dirs[wd] = xstrdup(dir);
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_type == DT_DIR && !streq(de->d_name, ".") &&
		    !streq(de->d_name, "..")) {
			_cleanup_free_ char *sub = path_join(dir, de->d_name);
			watch_dir(w, sub, depth + 1);
		}
	if (d)
		closedir(d);
}

static void changed_add(struct watcher *w, const char *path)
{
	strv_add_unique(&w->changed, path);
}

/* Reads what inotify has; true when something changed. */
static bool watch_read(struct watcher *w)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n <= 0)
			return any;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (ev->wd < 0 || ev->wd >= w->n_dirs ||
			    !w->dirs[ev->wd] || !ev->len)
				continue;
			_cleanup_free_ char *path =
			    path_join(w->dirs[ev->wd], ev->name);
			if ((ev->mask & IN_ISDIR) &&
			    (ev->mask & (IN_CREATE | IN_MOVED_TO)))
				watch_dir(w, path, 0);
			changed_add(w, path);
			any = true;
		}
	}
}

/* ---- writing into a container -------------------------------------------- */

static int open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
		       RESOLVE_NO_XDEV,
	};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && errno == EINTR);
	return fd;
}

/* What sync makes belongs to the container's root: the host's, or the
 * first id of its range (base). */
static void give(int dfd, const char *name, uint32_t base)
{
	if (base)
		(void)fchownat(dfd, name, base, base, AT_SYMLINK_NOFOLLOW);
}

/* The directory dir inside the container, made where missing. */
static int mkdir_in_root(int rootfd, const char *dir, uint32_t base,
			 struct orch_err *e)
{
	_cleanup_strv_ char **parts = path_components(dir, NULL);
	int cur = open_in_root(rootfd, "/", O_PATH | O_DIRECTORY);
	struct strbuf prefix;
	sb_init(&prefix);
	/* Each step from the container's root: a link resolves as the
	 * container would resolve it, and never out of it. */
	for (size_t i = 0; cur >= 0 && parts[i]; i++) {
		if (mkdirat(cur, parts[i], 0755) == 0)
			give(cur, parts[i], base);
		else if (errno != EEXIST) {
			int err = errno;
			close(cur);
			sb_free(&prefix);
			return err_sys(e, err, "creating %s", dir);
		}
		sb_printf(&prefix, "/%s", parts[i]);
		int next = open_in_root(rootfd, prefix.buf,
					O_PATH | O_DIRECTORY);
		close(cur);
		cur = next;
	}
	sb_free(&prefix);
	if (cur < 0)
		return err_sys(e, errno, "opening %s in the container", dir);
	return cur;
}

static int sync_path(int rootfd, const char *src, const char *dest,
		     uint32_t base, int depth, struct orch_err *e);

static int sync_dir(int rootfd, const char *src, const char *dest,
		    uint32_t base, int depth, struct orch_err *e)
{
	int fd = mkdir_in_root(rootfd, dest, base, e);
	if (fd < 0)
		return fd;
	close(fd);
	DIR *d = opendir(src);
	if (!d)
		return err_sys(e, errno, "reading %s", src);
	int r = 0;
	struct dirent *de;
	while (r == 0 && (de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
			_cleanup_free_ char *s = path_join(src, de->d_name);
			_cleanup_free_ char *t = path_join(dest, de->d_name);
			r = sync_path(rootfd, s, t, base, depth + 1, e);
		}
	closedir(d);
	return r;
}

/* Makes dest in the container what src is on the host (gone when src is
 * gone). */
static int sync_path(int rootfd, const char *src, const char *dest,
		     uint32_t base, int depth, struct orch_err *e)
{
	if (depth > 64)
		return err_set(e, ELOOP, "%s: too deep", src);
	_cleanup_free_ char *copy = xstrdup(dest);
	char *slash = strrchr(copy, '/');
	const char *name = slash ? slash + 1 : copy;
	if (slash)
		*slash = '\0';
	const char *parent = *copy ? copy : "/";
	struct stat st;
	if (lstat(src, &st) < 0) {
		if (errno != ENOENT)
			return err_sys(e, errno, "reading %s", src);
		_cleanup_close_ int pfd =
		    open_in_root(rootfd, parent, O_PATH | O_DIRECTORY);
		if (pfd >= 0 && unlinkat(pfd, name, 0) < 0 && errno == EISDIR)
			(void)unlinkat(pfd, name, AT_REMOVEDIR);
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return sync_dir(rootfd, src, dest, base, depth, e);
	_cleanup_close_ int pfd = mkdir_in_root(rootfd, parent, base, e);
	if (pfd < 0)
		return pfd;
	/* Whatever is there (a file, a link the container made) goes. */
	(void)unlinkat(pfd, name, 0);
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlink(src, target, sizeof(target) - 1);
		if (n < 0)
			return err_sys(e, errno, "reading %s", src);
		target[n] = '\0';
		if (symlinkat(target, pfd, name) < 0)
			return err_sys(e, errno, "creating %s", dest);
		give(pfd, name, base);
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return 0;
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return errno == ENOENT ? 0 : err_sys(e, errno, "opening %s", src);
	_cleanup_close_ int out =
	    openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		   st.st_mode & 07777);
	if (out < 0)
		return err_sys(e, errno, "creating %s in the container", dest);
	give(pfd, name, base);
	return fd_copy(in, out, src, e);
}

/* ---- acting on a batch ---------------------------------------------------- */

/* A rule's patterns: what it ignores, and (include) what alone counts. */
struct rule_pats {
	struct df_ignore *ignore, *include;
};

static bool rule_covers(const struct m_watch *w, const struct rule_pats *p,
			const char *path, char **rel)
{
	size_t n = strlen(w->path);
	if (strncmp(path, w->path, n) != 0 || (path[n] && path[n] != '/'))
		return false;
	*rel = xstrdup(path[n] ? path + n + 1 : "");
	if (**rel && ((p->ignore && df_ignore_match(p->ignore, *rel)) ||
		      (p->include && !df_ignore_match(p->include, *rel)))) {
		free(*rel);
		*rel = NULL;
		return false;
	}
	return true;
}

/* Copies the rule's changed files into each running container of s. */
static int sync_service(struct pstate *ps, const struct service *s,
			const struct m_watch *w, char *const *rels,
			char *const *names, struct orch_err *e)
{
	for (size_t i = 0; names[i]; i++) {
		json_t *rec = state_container_find(ps, names[i]);
		const char *id = jstr(rec, "id");
		pid_t pid;
		struct orch_err ign = {0};
		if (!id || rt_pid(id, &pid, &ign) < 0)
			continue;
		uint32_t base = (uint32_t)jint(json_object_get(rec, "spec"),
					       "userns_base", 0);
		_cleanup_free_ char *root = xasprintf("/proc/%d/root", (int)pid);
		_cleanup_close_ int rootfd =
		    open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			continue;
		for (size_t k = 0; rels[k]; k++) {
			_cleanup_free_ char *src =
			    *rels[k] ? path_join(w->path, rels[k])
				     : xstrdup(w->path);
			_cleanup_free_ char *dest =
			    *rels[k] ? path_join(w->target, rels[k])
				     : xstrdup(w->target);
			int r = sync_path(rootfd, src, dest, base, 0, e);
			if (r < 0)
				return err_wrap(e, "service %s: syncing %s",
						s->name, src);
		}
	}
	return 0;
}

static int act(struct project *m, const struct service *s,
	       const struct rule_pats *pats, const struct watcher *wt,
	       struct orch_err *e)
{
	bool rebuild = false, restart = false;
	size_t count = 0;
	struct pstate ps;
	int r = pstate_open(m->name, false, &ps, e);
	if (r < 0)
		return r;
	char *one[] = {s->name, NULL};
	_cleanup_strv_ char **names = containers_of(&ps, m, one, NULL);
	for (size_t i = 0; i < s->n_watch && r == 0; i++) {
		const struct m_watch *w = &s->watch[i];
		_cleanup_strv_ char **rels = xcalloc(1, sizeof(char *));
		for (size_t k = 0; wt->changed[k]; k++) {
			char *rel = NULL;
			if (rule_covers(w, &pats[i], wt->changed[k], &rel))
				strv_push(&rels, rel);
			free(rel);
		}
		if (!rels[0])
			continue;
		count += strv_len(rels);
		if (w->action == M_WATCH_REBUILD) {
			rebuild = true;
			continue;
		}
		if (w->action != M_WATCH_RESTART)
			r = sync_service(&ps, s, w, rels, names, e);
		if (r == 0 && w->action == M_WATCH_SYNC_EXEC)
			r = hook_exec(&ps, names, w->exec, "watch exec", e);
		restart = restart || w->action == M_WATCH_SYNC_RESTART ||
			  w->action == M_WATCH_RESTART;
	}
	if (r == 0 && count && rebuild) {
		fprintf(stderr,
			"Rebuilding service \"%s\" after changes were "
			"detected\n",
			s->name);
		struct up_opts uo = {.detach = true,
				     .no_deps = true,
				     .timeout_ms = -1,
				     .services = one};
		r = build_service_images(m, one, NULL, e);
		if (r == 0)
			r = reconcile_up(m, &uo, &ps, e);
	} else if (r == 0 && count) {
		fprintf(stderr,
			"%s service \"%s\" after %zu change%s were "
			"detected\n",
			restart ? "Restarting" : "Syncing", s->name, count,
			count == 1 ? "" : "s");
		if (restart)
			r = reconcile_stop(&ps, names, -1, "restart", e);
	}
	pstate_close(&ps);
	return r;
}

/* The files under dir/rel (rel "" for dir itself) that the rule's
 * patterns let count, as paths relative to dir; an ignored directory is
 * not entered. */
static void rule_files(const char *dir, const char *rel,
		       const struct rule_pats *p, int depth, char ***out)
{
	_cleanup_free_ char *path = *rel ? path_join(dir, rel) : xstrdup(dir);
	struct stat st;
	if (depth > 64 || lstat(path, &st) < 0)
		return;
	if (*rel && p->ignore && df_ignore_match(p->ignore, rel))
		return;
	if (!S_ISDIR(st.st_mode)) {
		if (!*rel || !p->include || df_ignore_match(p->include, rel))
			strv_push(out, rel);
		return;
	}
	DIR *d = opendir(path);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
			_cleanup_free_ char *sub =
			    *rel ? path_join(rel, de->d_name)
				 : xstrdup(de->d_name);
			rule_files(dir, sub, p, depth + 1, out);
		}
	if (d)
		closedir(d);
}

/* initial_sync: the files of each such sync rule (its patterns applied),
 * into the running containers, as watching starts. */
static int initial_sync(struct project *m, const struct service *s,
			const struct rule_pats *pats, struct orch_err *e)
{
	struct pstate ps;
	int r = 0;
	bool opened = false;
	char *one[] = {s->name, NULL};
	_cleanup_strv_ char **names = NULL;
	for (size_t i = 0; i < s->n_watch && r == 0; i++) {
		const struct m_watch *w = &s->watch[i];
		if (!w->initial_sync || !w->target)
			continue;
		if (!opened) {
			if ((r = pstate_open(m->name, false, &ps, e)) < 0)
				return r;
			opened = true;
			names = containers_of(&ps, m, one, NULL);
		}
		_cleanup_strv_ char **rels = xcalloc(1, sizeof(char *));
		rule_files(w->path, "", &pats[i], 0, &rels);
		r = sync_service(&ps, s, w, rels, names, e);
	}
	if (opened)
		pstate_close(&ps);
	return r;
}

int watch_project(struct project *m, char *const *services,
		  struct orch_err *e)
{
	struct watcher wt = {.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)};
	if (wt.fd < 0)
		return err_sys(e, errno, "starting inotify");
	wt.changed = xcalloc(1, sizeof(char *));
	struct rule_pats **pats = xcalloc(m->n_services + 1, sizeof(*pats));
	size_t rules = 0;
	int r = 0;
	for (size_t i = 0; i < m->n_services && r == 0; i++) {
		const struct service *s = &m->services[i];
		if (services && services[0] && !strv_contains(services, s->name))
			continue;
		pats[i] = xcalloc(s->n_watch + 1, sizeof(**pats));
		for (size_t k = 0; k < s->n_watch && r == 0; k++) {
			const struct m_watch *w = &s->watch[k];
			_cleanup_free_ char *ig =
			    w->ignore ? strv_join(w->ignore, "\n") : NULL;
			_cleanup_free_ char *inc =
			    w->include ? strv_join(w->include, "\n") : NULL;
			r = df_ignore_parse(ig, &pats[i][k].ignore, e);
			if (r == 0 && inc)
				r = df_ignore_parse(inc, &pats[i][k].include,
						    e);
			struct stat st;
			if (stat(w->path, &st) == 0 && S_ISDIR(st.st_mode)) {
				watch_dir(&wt, w->path, 0);
			} else {
				_cleanup_free_ char *dir = xstrdup(w->path);
				char *slash = strrchr(dir, '/');
				if (slash)
					*slash = '\0';
				watch_dir(&wt, *dir ? dir : "/", 64);
			}
			rules++;
		}
	}
	if (r == 0 && !rules)
		r = err_set(e, EINVAL,
			    "none of the selected services has develop.watch "
			    "rules");
	if (r == 0) {
		struct sigaction sa = {.sa_handler = on_stop};
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		fprintf(stderr, "Watch enabled\n");
		for (size_t i = 0; i < m->n_services && r == 0; i++)
			if (pats[i])
				r = initial_sync(m, &m->services[i], pats[i],
						 e);
	}
	int64_t due = -1;
	while (r == 0 && !stop) {
		struct pollfd pf = {.fd = wt.fd, .events = POLLIN};
		int64_t now = mono_ms();
		int timeout = due < 0 ? -1 : due > now ? (int)(due - now) : 0;
		int n = poll(&pf, 1, timeout);
		if (n < 0 && errno != EINTR) {
			r = err_sys(e, errno, "waiting for changes");
			break;
		}
		if (n > 0 && watch_read(&wt)) {
			due = mono_ms() + QUIET_MS;
			continue;
		}
		if (due < 0 || mono_ms() < due)
			continue;
		due = -1;
		for (size_t i = 0; i < m->n_services; i++) {
			if (!pats[i])
				continue;
			struct orch_err ae = {0};
			if (act(m, &m->services[i], pats[i], &wt, &ae) < 0)
				fprintf(stderr, "orch: watch: %s\n", ae.msg);
		}
		strv_free(wt.changed);
		wt.changed = xcalloc(1, sizeof(char *));
		fflush(stderr);
	}
	for (size_t i = 0; i < m->n_services; i++) {
		for (size_t k = 0; pats[i] && k < m->services[i].n_watch;
		     k++) {
			df_ignore_free(pats[i][k].ignore);
			df_ignore_free(pats[i][k].include);
		}
		free(pats[i]);
	}
	free(pats);
	for (int i = 0; i < wt.n_dirs; i++)
		free(wt.dirs[i]);
	free(wt.dirs);
	strv_free(wt.changed);
	close(wt.fd);
	return r;
}
