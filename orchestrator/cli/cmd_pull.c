/* orch image pull|push, orch login|logout, and the progress lines of
 * pulls and pushes. */
#include "orchestrator/cli/cli.h"
#include "runtime/registry/registry.h"
#include "runtime/runtime.h"

#include <getopt.h>
#include <pthread.h>
#include <termios.h>

/* ---- progress ---------------------------------------------------------- */

/* One line per layer.  On a terminal the lines are redrawn in place with
 * a bar; elsewhere each change of status is one plain line (downloading
 * progress is not repeated). */
struct pull_view {
	pthread_mutex_t lock;
	bool tty, quiet;
	FILE *out;
	struct view_line {
		char *ref, *layer, *status;
		int64_t done, total;
	} * lines;
	size_t n, drawn;
};

static void view_init(struct pull_view *v, bool quiet)
{
	memset(v, 0, sizeof(*v));
	pthread_mutex_init(&v->lock, NULL);
	v->out = stdout;
	v->quiet = quiet;
	v->tty = !quiet && cli_progress_tty();
}

static void view_free(struct pull_view *v)
{
	for (size_t i = 0; i < v->n; i++) {
		free(v->lines[i].ref);
		free(v->lines[i].layer);
		free(v->lines[i].status);
	}
	free(v->lines);
	pthread_mutex_destroy(&v->lock);
}

static const char *short_digest(const char *d)
{
	const char *c = strchr(d, ':');
	return c ? c + 1 : d;
}

static void view_line_text(const struct view_line *l, char *buf, size_t n)
{
	if (l->total > 0 && l->done >= 0 &&
	    (streq(l->status, "Downloading") || streq(l->status, "Pushing"))) {
		int width = 30;
		int fill = (int)(l->done * width / l->total);
		if (fill > width)
			fill = width;
		char bar[64];
		memset(bar, '=', (size_t)fill);
		bar[fill] = fill < width ? '>' : '=';
		memset(bar + fill + 1, ' ', (size_t)(width - fill));
		bar[width + 1] = '\0';
		snprintf(buf, n, "%.12s: %s [%s] %.1fMB/%.1fMB",
			 short_digest(l->layer), l->status, bar,
			 (double)l->done / 1e6, (double)l->total / 1e6);
	} else {
		snprintf(buf, n, "%.12s: %s", short_digest(l->layer),
			 l->status);
	}
}

static void view_redraw(struct pull_view *v)
{
	if (v->drawn)
		fprintf(v->out, "\033[%zuA", v->drawn);
	for (size_t i = 0; i < v->n; i++) {
		char text[256];
		view_line_text(&v->lines[i], text, sizeof(text));
		fprintf(v->out, "\r\033[2K%s\n", text);
	}
	v->drawn = v->n;
	fflush(v->out);
}

static void view_progress(void *ctx, const char *ref, const char *layer,
			  const char *status, int64_t done, int64_t total)
{
	struct pull_view *v = ctx;
	if (v->quiet)
		return;
	pthread_mutex_lock(&v->lock);
	struct view_line *l = NULL;
	for (size_t i = 0; i < v->n && !l; i++)
		if (streq(v->lines[i].layer, layer) &&
		    streq(v->lines[i].ref, ref))
			l = &v->lines[i];
	if (!l) {
		v->lines = xrealloc(v->lines, (v->n + 1) * sizeof(*v->lines));
		l = &v->lines[v->n++];
		memset(l, 0, sizeof(*l));
		l->ref = xstrdup(ref);
		l->layer = xstrdup(layer);
	}
	bool changed = !l->status || !streq(l->status, status);
	free(l->status);
	l->status = xstrdup(status);
	l->done = done;
	l->total = total;
	if (v->tty) {
		view_redraw(v);
	} else if (changed) {
		char text[256];
		view_line_text(l, text, sizeof(text));
		fprintf(v->out, "%s\n", text);
		fflush(v->out);
	}
	pthread_mutex_unlock(&v->lock);
}

/* ---- orch image pull --------------------------------------------------- */

static const char *pull_usage =
    "image pull [--platform OS/ARCH] [-q] NAME[:TAG|@DIGEST]";

int cmd_image_pull(int argc, char **argv)
{
	enum { O_PLATFORM = CLI_OPT_LOCAL };
	static const struct option opts[] = {
	    {"platform", required_argument, NULL, O_PLATFORM},
	    {"quiet", no_argument, NULL, 'q'},
	    {"all-tags", no_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0}};
	const char *platform = NULL;
	bool quiet = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qa", opts, NULL)) != -1) {
		if (c == 'q')
			quiet = true;
		else if (c == O_PLATFORM)
			platform = optarg;
		else if (c == 'a') {
			fprintf(stderr, "orch: image pull: --all-tags is not "
					"supported\n");
			return 2;
		} else
			return cli_usage("image pull", pull_usage);
	}
	if (optind + 1 != argc)
		return cli_usage("image pull", pull_usage);
	const char *ref = argv[optind];
	struct pull_view view;
	view_init(&view, quiet);
	struct rt_pull_opts o = {.platform = platform,
				 .progress = view_progress,
				 .progress_ctx = &view};
	struct rt_pull_result res;
	struct orch_err e = {0};
	if (!quiet) {
		printf("%s: Pulling\n", ref);
		fflush(stdout);
	}
	int r = rt_image_pull(ref, &o, &res, &e);
	view_free(&view);
	if (r < 0) {
		fprintf(stderr, "Error response from registry: %s\n", e.msg);
		return 1;
	}
	if (quiet) {
		printf("%s\n", ref);
		return 0;
	}
	printf("Digest: %s\n", res.digest);
	printf("Status: %s %s\n",
	       res.updated ? "Downloaded newer image for"
			   : "Image is up to date for",
	       ref);
	return 0;
}

static bool svc_selected(const struct project *m, char *const *services,
			 const struct service *s, bool with_deps, int depth);

/* ---- orch image push, orch push ---------------------------------------- */

/* Pushes ref, its layers' lines in view; the digest line as docker
 * prints it unless quiet. */
static int push_one(const char *ref, struct pull_view *view, bool quiet,
		    struct orch_err *e)
{
	struct rt_push_opts o = {.progress = view_progress,
				 .progress_ctx = view};
	struct rt_push_result res;
	int r = rt_image_push(ref, &o, &res, e);
	if (r < 0 || quiet)
		return r;
	const char *colon = strrchr(ref, ':');
	const char *tag = colon && !strchr(colon, '/') ? colon + 1 : "latest";
	fprintf(view->out, "%s: digest: %s size: %lld\n", tag, res.digest,
		(long long)res.size);
	return 0;
}

static const char *push_usage = "image push [-q] NAME[:TAG]";

int cmd_image_push(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"quiet", no_argument, NULL, 'q'},
	    {"all-tags", no_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0}};
	bool quiet = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "qa", opts, NULL)) != -1) {
		if (c == 'q')
			quiet = true;
		else if (c == 'a') {
			fprintf(stderr, "orch: image push: --all-tags is not "
					"supported\n");
			return 2;
		} else
			return cli_usage("image push", push_usage);
	}
	if (optind + 1 != argc)
		return cli_usage("image push", push_usage);
	const char *ref = argv[optind];
	struct pull_view view;
	view_init(&view, quiet);
	if (!quiet) {
		printf("The push refers to %s\n", ref);
		fflush(stdout);
	}
	struct orch_err e = {0};
	int r = push_one(ref, &view, quiet, &e);
	view_free(&view);
	if (r < 0) {
		fprintf(stderr, "orch: image push: %s\n", e.msg);
		return 1;
	}
	return 0;
}

static const char *push_cmd_usage =
    "push [--ignore-push-failures] [-q] [--include-deps] [SERVICE...]";

int cmd_push(int argc, char **argv)
{
	enum { O_IGNORE = CLI_OPT_LOCAL, O_DEPS };
	static const struct option lopts[] = {
	    CLI_GLOBAL_LONGOPTS,
	    {"ignore-push-failures", no_argument, NULL, O_IGNORE},
	    {"quiet", no_argument, NULL, 'q'},
	    {"include-deps", no_argument, NULL, O_DEPS},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0}};
	bool ignore = false, quiet = false, with_deps = false;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "qh" CLI_GLOBAL_SHORTOPTS, lopts)) !=
	       -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		if (c == O_IGNORE)
			ignore = true;
		else if (c == 'q')
			quiet = true;
		else if (c == O_DEPS)
			with_deps = true;
		else if (c == 'h') {
			printf("Usage: orch %s\n", push_cmd_usage);
			return 0;
		} else
			return cli_usage("push", push_cmd_usage);
	}
	struct project *m = NULL;
	if (cli_load(&m, false) < 0)
		return 1;
	_cleanup_strv_ char **services =
	    cli_service_args(m, argc, argv, optind);
	if (!services) {
		project_free(m);
		return 1;
	}
	int failed = push_service_images(m, services, with_deps, ignore, quiet);
	project_free(m);
	return failed ? 1 : 0;
}

char **services_with_deps(const struct project *m, char *const *services)
{
	char **v = xcalloc(1, sizeof(char *));
	for (size_t i = 0; i < m->n_services; i++)
		if (svc_selected(m, services, &m->services[i], true, 0))
			strv_push(&v, m->services[i].name);
	return v;
}

int push_service_images(const struct project *m, char *const *services,
			bool with_deps, bool ignore, bool quiet)
{
	/* As compose: the services that are built and name their image;
	 * each image once. */
	struct pull_view view;
	view_init(&view, quiet || !cli_progress_tty());
	view.out = stderr;
	_cleanup_strv_ char **done = xcalloc(1, sizeof(char *));
	int failed = 0;
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		if (!s->image || !s->build.present ||
		    !svc_selected(m, services, s, with_deps, 0))
			continue;
		/* The image, then the build's extra tags. */
		for (size_t t = 0; t <= strv_len(s->build.tags); t++) {
			const char *ref = t ? s->build.tags[t - 1] : s->image;
			if (strv_contains(done, ref))
				continue;
			strv_push(&done, ref);
			if (!quiet)
				fprintf(stderr, " %s Pushing %s\n", s->name,
					ref);
			struct orch_err e = {0};
			if (push_one(ref, &view, true, &e) < 0) {
				fprintf(stderr, " %s %s %s\n", s->name,
					ignore ? "Warning" : "Error", e.msg);
				failed += !ignore;
			} else if (!quiet) {
				fprintf(stderr, " %s Pushed %s\n", s->name,
					ref);
			}
		}
	}
	view_free(&view);
	return failed;
}

/* ---- services' images: pull_policy, `orch pull`, up's pulls ------------- */

enum pull_when { PULL_NEVER, PULL_MISSING, PULL_ALWAYS, PULL_AGED };

/* What a service's pull_policy (or the command's override) says. */
static int pull_policy_of(const struct service *s, const char *override,
			  enum pull_when *when, int64_t *max_age_s,
			  struct orch_err *e)
{
	const char *p = override ? override : s->pull_policy;
	*max_age_s = 0;
	if (!p)
		/* A service that builds its image is built, not pulled. */
		*when = s->build.present ? PULL_NEVER : PULL_MISSING;
	else if (streq(p, "always"))
		*when = PULL_ALWAYS;
	else if (streq(p, "missing") || streq(p, "if_not_present"))
		*when = PULL_MISSING;
	else if (streq(p, "never") || streq(p, "build"))
		*when = PULL_NEVER;
	else if (streq(p, "daily") || streq(p, "weekly")) {
		*when = PULL_AGED;
		*max_age_s = streq(p, "daily") ? 86400 : 7 * 86400;
	} else if (streq(p, "refresh") && !override) {
		/* After pull_refresh_after, else at every up. */
		bool aged = s->pull_refresh_after_ns > 0;
		*when = aged ? PULL_AGED : PULL_ALWAYS;
		*max_age_s = aged ? s->pull_refresh_after_ns / 1000000000 : 0;
	} else if (startswith(p, "every_")) {
		int64_t ns;
		if (duration_parse(p + 6, &ns) < 0 || ns <= 0)
			goto bad;
		*when = PULL_AGED;
		*max_age_s = ns / 1000000000;
	} else {
		goto bad;
	}
	return 0;
bad:
	if (override)
		return err_set(e, EINVAL,
			       "invalid --pull \"%s\": want always, missing "
			       "or never",
			       p);
	const struct m_pos *pos = service_key_pos(s, "pull_policy");
	return err_set(e, EINVAL,
		       "%s:%d:%d: service \"%s\": invalid pull_policy \"%s\": "
		       "want always, missing, never, build, daily, weekly, "
		       "every_<duration> or refresh",
		       pos ? pos->file : "?", pos ? pos->line : 0,
		       pos ? pos->col : 0, s->name, p);
}

static bool image_stored(const char *ref)
{
	struct rt_image *img = NULL;
	if (rt_image_lookup(ref, &img, NULL) < 0)
		return false;
	rt_image_free(img);
	return true;
}

struct svc_pull {
	const struct service *s;
	const char *ref;
	const char *platform;
	struct pull_view *view;
	pthread_t thread;
	bool started;
	int rc;
	struct orch_err err;
	struct rt_pull_result res;
};

static void *svc_pull_run(void *arg)
{
	struct svc_pull *sp = arg;
	struct rt_pull_opts o = {.platform = sp->platform,
				 .progress = view_progress,
				 .progress_ctx = sp->view};
	sp->rc = rt_image_pull(sp->ref, &o, &sp->res, &sp->err);
	return NULL;
}

/* Whether services (none: all) names s, or a service that depends on s
 * (with_deps). */
static bool svc_selected(const struct project *m, char *const *services,
			 const struct service *s, bool with_deps, int depth)
{
	if (!services || !services[0])
		return true;
	if (strv_contains(services, s->name))
		return true;
	if (!with_deps || depth > 64)
		return false;
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *o = &m->services[i];
		for (size_t d = 0; d < o->n_depends_on; d++)
			if (streq(o->depends_on[d].service, s->name) &&
			    svc_selected(m, services, o, true, depth + 1))
				return true;
	}
	return false;
}

/* Decides which services' images to pull. */
static int pull_plan(const struct project *m, const struct pull_request *rq,
		     struct svc_pull **out, size_t *n, struct orch_err *e)
{
	struct svc_pull *v = xcalloc(m->n_services + 1, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < m->n_services; i++) {
		const struct service *s = &m->services[i];
		if (!s->image ||
		    !svc_selected(m, rq->services, s, rq->with_deps, 0))
			continue;
		enum pull_when when = PULL_MISSING;
		int64_t max_age = 0;
		int r = pull_policy_of(s, rq->policy, &when, &max_age, e);
		if (r < 0) {
			free(v);
			return r;
		}
		bool need = when == PULL_ALWAYS ||
			    ((when == PULL_MISSING || when == PULL_AGED) &&
			     !image_stored(s->image));
		if (when == PULL_AGED && !need)
			need =
			    (int64_t)time(NULL) - rt_image_pulled_at(s->image) >
			    max_age;
		bool dup = false;
		for (size_t j = 0; j < k && !dup; j++)
			dup = streq(v[j].ref, s->image);
		if (!need || dup)
			continue;
		v[k].s = s;
		v[k].ref = s->image;
		v[k].platform = s->platform;
		k++;
	}
	*out = v;
	*n = k;
	return 0;
}

int pull_service_images(const struct project *m, const struct pull_request *rq,
			struct orch_err *e)
{
	struct svc_pull *v;
	size_t n;
	int r = pull_plan(m, rq, &v, &n, e);
	if (r < 0)
		return r;
	/* Layer lines only for a single image on a terminal: compose's
	 * service lines otherwise. */
	struct pull_view view;
	view_init(&view, rq->quiet || n != 1 || !cli_progress_tty());
	view.out = stderr;
	for (size_t i = 0; i < n; i++) {
		v[i].view = &view;
		if (!rq->quiet)
			fprintf(stderr, " %s Pulling\n", v[i].s->name);
		v[i].started = pthread_create(&v[i].thread, NULL, svc_pull_run,
					      &v[i]) == 0;
		if (!v[i].started)
			svc_pull_run(&v[i]);
	}
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i].started)
			pthread_join(v[i].thread, NULL);
		if (v[i].rc < 0) {
			if (rq->ignore_failures)
				fprintf(stderr, " %s Warning %s\n",
					v[i].s->name, v[i].err.msg);
			else if (!failed++) {
				const struct m_pos *p =
				    service_key_pos(v[i].s, "image");
				err_set(e, -v[i].rc == 0 ? EIO : -v[i].rc,
					"%s:%d:%d: service \"%s\": pulling "
					"%s: %s",
					p->file, p->line, p->col, v[i].s->name,
					v[i].ref, v[i].err.msg);
			}
		} else if (!rq->quiet) {
			fprintf(stderr, " %s Pulled\n", v[i].s->name);
		}
	}
	view_free(&view);
	free(v);
	return failed ? -EIO : 0;
}

static const char *pull_cmd_usage =
    "pull [--ignore-pull-failures] [-q] [--policy missing|always] "
    "[--include-deps] [SERVICE...]";

int cmd_pull(int argc, char **argv)
{
	enum { O_IGNORE = CLI_OPT_LOCAL, O_POLICY, O_DEPS, O_BUILDABLE };
	static const struct option lopts[] = {
	    CLI_GLOBAL_LONGOPTS,
	    {"ignore-pull-failures", no_argument, NULL, O_IGNORE},
	    {"ignore-buildable", no_argument, NULL, O_BUILDABLE},
	    {"quiet", no_argument, NULL, 'q'},
	    {"policy", required_argument, NULL, O_POLICY},
	    {"include-deps", no_argument, NULL, O_DEPS},
	    {"help", no_argument, NULL, 'h'},
	    {0, 0, 0, 0}};
	struct pull_request rq = {.policy = "always"};
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "qh" CLI_GLOBAL_SHORTOPTS, lopts)) !=
	       -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		if (c == O_IGNORE)
			rq.ignore_failures = true;
		else if (c == 'q')
			rq.quiet = true;
		else if (c == O_DEPS)
			rq.with_deps = true;
		else if (c == O_BUILDABLE)
			continue;
		else if (c == O_POLICY &&
			 (streq(optarg, "missing") || streq(optarg, "always")))
			rq.policy = optarg;
		else if (c == 'h') {
			printf("Usage: orch %s\n", pull_cmd_usage);
			return 0;
		} else
			return cli_usage("pull", pull_cmd_usage);
	}
	struct project *m = NULL;
	if (cli_load(&m, false) < 0)
		return 1;
	_cleanup_strv_ char **services =
	    cli_service_args(m, argc, argv, optind);
	if (!services) {
		project_free(m);
		return 1;
	}
	rq.services = services;
	struct orch_err e = {0};
	int r = pull_service_images(m, &rq, &e);
	project_free(m);
	return r < 0 ? cli_fail(&e) : 0;
}

/* ---- orch login / logout ------------------------------------------------ */

/* "https://host:port/v1/" -> "host:port"; NULL stays NULL (Docker Hub). */
static char *registry_arg(const char *arg)
{
	if (!arg)
		return NULL;
	const char *p = arg;
	if (startswith(p, "https://"))
		p += 8;
	else if (startswith(p, "http://"))
		p += 7;
	return xstrndup(p, strcspn(p, "/"));
}

static char *read_line(FILE *f, bool echo_off)
{
	struct termios old, quiet;
	bool tty =
	    echo_off && isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0;
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(f), TCSAFLUSH, &quiet);
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	if (tty) {
		tcsetattr(fileno(f), TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n < 0) {
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	return line;
}

static const char *login_usage =
    "login [-u USER] [-p PASSWORD | --password-stdin] [REGISTRY]";

int cmd_login(int argc, char **argv)
{
	enum { O_STDIN = CLI_OPT_LOCAL };
	static const struct option opts[] = {
	    {"username", required_argument, NULL, 'u'},
	    {"password", required_argument, NULL, 'p'},
	    {"password-stdin", no_argument, NULL, O_STDIN},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	_cleanup_free_ char *user = NULL, *pass = NULL;
	bool from_stdin = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "u:p:h", opts, NULL)) != -1) {
		if (c == 'u') {
			free(user);
			user = xstrdup(optarg);
		} else if (c == 'p') {
			free(pass);
			pass = xstrdup(optarg);
		} else if (c == O_STDIN) {
			from_stdin = true;
		} else if (c == 'h') {
			printf("Usage: orch %s\n", login_usage);
			return 0;
		} else {
			return cli_usage("login", login_usage);
		}
	}
	if (argc - optind > 1 || (from_stdin && pass))
		return cli_usage("login", login_usage);
	_cleanup_free_ char *reg =
	    registry_arg(optind < argc ? argv[optind] : NULL);
	if (!user) {
		fprintf(stderr, "Username: ");
		user = read_line(stdin, false);
	}
	if (from_stdin)
		pass = read_line(stdin, false);
	else if (!pass) {
		fprintf(stderr, "Password: ");
		pass = read_line(stdin, true);
	}
	if (!user || !*user || !pass || !*pass) {
		fprintf(stderr, "orch login: a user name and a password are "
				"needed\n");
		return 1;
	}
	struct orch_err e = {0};
	if (rt_registry_login(reg, user, pass, &e) < 0)
		return cli_fail(&e);
	printf("Login Succeeded\n");
	return 0;
}

int cmd_logout(int argc, char **argv)
{
	if (args_want_help(argc, argv)) {
		printf("Usage: orch logout [REGISTRY]\n");
		return 0;
	}
	if (argc > 2)
		return cli_usage("logout", "[REGISTRY]");
	_cleanup_free_ char *reg = registry_arg(argc == 2 ? argv[1] : NULL);
	const char *name = reg ? reg : "docker.io";
	struct orch_err e = {0};
	int r = rt_registry_logout(reg, &e);
	if (r < 0)
		return cli_fail(&e);
	if (r == 0)
		printf("Not logged in to %s\n", name);
	else
		printf("Removing login credentials for %s\n", name);
	return 0;
}
