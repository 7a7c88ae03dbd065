/* orch image pull|push, orch login|logout, and the progress lines of
 * pulls and pushes. */
#include "orchestrator/cli.h"
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
	if (l->total > 0 && l->done >= 0 && streq(l->status, "Downloading")) {
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
