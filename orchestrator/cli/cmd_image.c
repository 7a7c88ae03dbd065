/* orch images / orch image import|load|ls|rm|inspect|tag. */
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

#include <getopt.h>
#include <jansson.h>
#include <time.h>

/* docker's "3 hours ago" style. */
static void human_ago(int64_t t, char *buf, size_t n)
{
	int64_t d = (int64_t)time(NULL) - t;
	if (t <= 0) {
		snprintf(buf, n, "N/A");
		return;
	}
	if (d < 1)
		snprintf(buf, n, "Less than a second ago");
	else if (d < 60)
		snprintf(buf, n, "%lld seconds ago", (long long)d);
	else if (d < 120)
		snprintf(buf, n, "About a minute ago");
	else if (d < 3600)
		snprintf(buf, n, "%lld minutes ago", (long long)d / 60);
	else if (d < 7200)
		snprintf(buf, n, "About an hour ago");
	else if (d < 48 * 3600)
		snprintf(buf, n, "%lld hours ago", (long long)d / 3600);
	else if (d < 14 * 86400)
		snprintf(buf, n, "%lld days ago", (long long)d / 86400);
	else if (d < 60 * 86400)
		snprintf(buf, n, "%lld weeks ago", (long long)d / (7 * 86400));
	else if (d < 2 * 365 * 86400)
		snprintf(buf, n, "%lld months ago",
			 (long long)d / (30 * 86400));
	else
		snprintf(buf, n, "%lld years ago",
			 (long long)d / (365 * 86400));
}

/* docker's decimal sizes: "4.26MB". */
static void human_size(int64_t b, char *buf, size_t n)
{
	static const char *units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)b;
	size_t u = 0;
	while (v >= 1000 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1000;
		u++;
	}
	snprintf(buf, n, "%.3g%s", v, units[u]);
}

static int image_usage(FILE *f, int code)
{
	fprintf(
	    f,
	    "Usage: orch image COMMAND\n\n"
	    "Commands:\n"
	    "  import FILE|- NAME[:TAG]  Import a rootfs tarball (- for "
	    "stdin)\n"
	    "  load [-i FILE|DIR]        Load a docker-archive or OCI layout\n"
	    "                            (from stdin without -i)\n"
	    "  ls [-q] [--digests]       List images\n"
	    "  rm [-f] IMAGE...          Remove images\n"
	    "  inspect IMAGE...          Show images' config as JSON\n"
	    "  tag SOURCE TARGET         Give an image another name\n"
	    "  build [-t NAME] CONTEXT   Build an image from a "
	    "Containerfile\n"
	    "  pull [--platform P] REF   Pull an image from a registry\n"
	    "  push REF                  Push an image to a registry\n");
	return code;
}

/* The digest recorded for repo (of "repo:tag"), or "<none>". */
static const char *repo_digest(const struct rt_image *img, const char *repo)
{
	size_t n = strlen(repo);
	for (size_t i = 0; img->digests && img->digests[i]; i++)
		if (strncmp(img->digests[i], repo, n) == 0 &&
		    img->digests[i][n] == '@')
			return img->digests[i] + n + 1;
	return "<none>";
}

static void images_ls_row(const struct rt_image *img, bool digests)
{
	char ago[64], size[32];
	human_ago(img->created, ago, sizeof(ago));
	human_size(img->size, size, sizeof(size));
	size_t nn = strv_len(img->names), nd = strv_len(img->digests);
	/* An image pulled by digest alone has no tag: one row per digest. */
	size_t rows = nn ? nn : nd ? nd : 1;
	for (size_t k = 0; k < rows; k++) {
		_cleanup_free_ char *repo = xstrdup(nn	 ? img->names[k]
						    : nd ? img->digests[k]
							 : "<none>:<none>");
		char *sep = nn || !nd ? strrchr(repo, ':') : strchr(repo, '@');
		*sep = '\0';
		const char *tag = nn || !nd ? sep + 1 : "<none>";
		if (digests)
			printf("%-30s %-12s %-71s %-14.12s %-24s %s\n", repo,
			       tag, repo_digest(img, repo), img->id, ago, size);
		else
			printf("%-30s %-12s %-14.12s %-24s %s\n", repo, tag,
			       img->id, ago, size);
	}
}

static int images_ls(int argc, char **argv)
{
	bool quiet = false, digests = false;
	static const struct option opts[] = {{"quiet", no_argument, 0, 'q'},
					     {"digests", no_argument, 0, 'd'},
					     {0, 0, 0, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "q", opts, NULL)) != -1) {
		if (c == 'q')
			quiet = true;
		else if (c == 'd')
			digests = true;
		else
			return image_usage(stderr, 2);
	}
	if (optind != argc)
		return image_usage(stderr, 2);
	struct orch_err e = {0};
	struct rt_image **imgs;
	size_t n;
	if (rt_image_list(&imgs, &n, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	if (!quiet && digests)
		printf("%-30s %-12s %-71s %-14s %-24s %s\n", "REPOSITORY",
		       "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE");
	else if (!quiet)
		printf("%-30s %-12s %-14s %-24s %s\n", "REPOSITORY", "TAG",
		       "IMAGE ID", "CREATED", "SIZE");
	for (size_t i = 0; i < n; i++) {
		if (quiet)
			printf("%.12s\n", imgs[i]->id);
		else
			images_ls_row(imgs[i], digests);
		rt_image_free(imgs[i]);
	}
	free(imgs);
	return 0;
}

static int image_import(int argc, char **argv)
{
	if (argc != 3)
		return image_usage(stderr, 2);
	struct orch_err e = {0};
	char id[65];
	const char *file = streq(argv[1], "-") ? "/dev/stdin" : argv[1];
	if (rt_image_import(file, argv[2], id, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	printf("sha256:%s\n", id);
	return 0;
}

static int image_load(int argc, char **argv)
{
	const char *input = NULL;
	static const struct option opts[] = {
	    {"input", required_argument, 0, 'i'},
	    {"quiet", no_argument, 0, 'q'},
	    {0, 0, 0, 0}};
	int c;
	bool quiet = false;
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:q", opts, NULL)) != -1) {
		if (c == 'i')
			input = optarg;
		else if (c == 'q')
			quiet = true;
		else
			return image_usage(stderr, 2);
	}
	if (optind != argc)
		return image_usage(stderr, 2);
	/* Like docker load: the archive comes on stdin without -i. */
	if (!input && isatty(0)) {
		log_error("no input: give -i FILE|DIR or an archive on stdin");
		return 2;
	}
	if (!input || streq(input, "-"))
		input = "/dev/stdin";
	struct orch_err e = {0};
	_cleanup_strv_ char **refs = NULL;
	if (rt_image_load(input, &refs, &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	for (size_t i = 0; !quiet && refs && refs[i]; i++)
		printf("Loaded image%s: %s\n",
		       strchr(refs[i], ':') ? "" : " ID", refs[i]);
	return 0;
}

static int image_rm(int argc, char **argv)
{
	bool force = false;
	static const struct option opts[] = {{"force", no_argument, 0, 'f'},
					     {0, 0, 0, 0}};
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
		if (c != 'f')
			return image_usage(stderr, 2);
		force = true;
	}
	if (optind >= argc)
		return image_usage(stderr, 2);
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		struct orch_err e = {0};
		struct rt_image *img = NULL;
		if (rt_image_lookup(argv[i], &img, &e) < 0 ||
		    rt_image_remove(argv[i], force, &e) < 0) {
			log_error("%s", e.msg);
			rt_image_free(img);
			rc = 1;
			continue;
		}
		/* As docker says it: the names that went, then the image if
		 * it went too. */
		struct rt_image *left = NULL;
		bool still = rt_image_lookup(img->id, &left, NULL) == 0;
		for (size_t k = 0; img->names[k]; k++)
			if (!left || !strv_contains(left->names, img->names[k]))
				printf("Untagged: %s\n", img->names[k]);
		if (!still)
			printf("Deleted: sha256:%s\n", img->id);
		rt_image_free(left);
		rt_image_free(img);
	}
	return rc;
}

static int image_inspect(int argc, char **argv)
{
	if (argc < 2)
		return image_usage(stderr, 2);
	int rc = 0, shown = 0;
	printf("[");
	for (int i = 1; i < argc; i++) {
		struct orch_err e = {0};
		_cleanup_free_ char *json = NULL;
		if (rt_image_inspect_json(argv[i], &json, &e) < 0) {
			log_error("%s", e.msg);
			rc = 1;
			continue;
		}
		printf("%s%s", shown++ ? ",\n" : "\n", json);
	}
	printf("\n]\n");
	return rc;
}

static int image_tag(int argc, char **argv)
{
	if (argc != 3)
		return image_usage(stderr, 2);
	struct orch_err e = {0};
	if (rt_image_tag(argv[1], argv[2], &e) < 0) {
		log_error("%s", e.msg);
		return 1;
	}
	return 0;
}

/* Whether the command runs for a project: -f or -p given, or a compose
 * file found here or above. */
static bool in_project(void)
{
	if (cli.files || cli.project_name || getenv("COMPOSE_PROJECT_NAME"))
		return true;
	struct compose_opts o = {.project_dir = cli.project_dir,
				 .env_files = cli.env_files,
				 .all_profiles = true};
	struct project *m = NULL;
	struct orch_diag d = {0};
	bool found = compose_load(&o, &m, &d) == 0;
	for (size_t i = 0; !found && i < d.n; i++)
		found = d.v[i].severity == M_ERROR &&
			!strstr(d.v[i].msg, "no configuration file provided");
	diag_free(&d);
	if (m)
		project_free(m);
	return found;
}

/* As compose: the images of the project's containers. */
static int project_images(int argc, char **argv, const char *usage)
{
	static const struct option lopts[] = {
	    CLI_GLOBAL_LONGOPTS,
	    {"quiet", no_argument, NULL, 'q'},
	    {"format", required_argument, NULL, 'F'},
	    {0},
	};
	bool quiet = false, json = false;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "q" CLI_GLOBAL_SHORTOPTS, lopts)) !=
	       -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		if (c == 'q')
			quiet = true;
		else if (c == 'F' &&
			 (streq(optarg, "json") || streq(optarg, "table")))
			json = streq(optarg, "json");
		else
			return cli_usage("images", usage);
	}
	struct pstate ps;
	struct orch_err e = {0};
	_cleanup_project_ struct project *m = NULL;
	int r = cli_read(&ps, &m, &e);
	if (r < 0 && r != -ENOENT)
		return cli_fail(&e);
	_cleanup_strv_ char **svcs = NULL;
	for (int i = optind; i < argc; i++)
		strv_push(&svcs, argv[i]);
	const char *unknown = NULL;
	_cleanup_strv_ char **names =
	    r < 0 ? xcalloc(1, sizeof(char *))
		  : containers_of(&ps, m, svcs, &unknown);
	if (unknown) {
		pstate_close(&ps);
		fprintf(stderr, "orch: no such service: %s\n", unknown);
		return 1;
	}
	if (!quiet && !json)
		printf("%-30s %-30s %-12s %-14s %s\n", "CONTAINER",
		       "REPOSITORY", "TAG", "IMAGE ID", "SIZE");
	json_t *rows = json_array();
	_cleanup_strv_ char **seen = NULL;
	for (size_t i = 0; names[i]; i++) {
		json_t *rec = state_container_find(&ps, names[i]);
		const char *ref = rec ? jstr(rec, "image") : NULL;
		_cleanup_image_ struct rt_image *img = NULL;
		struct orch_err ie = {0};
		if (!ref || rt_image_lookup(ref, &img, &ie) < 0)
			continue;
		_cleanup_free_ char *repo = xstrdup(ref);
		char *colon = strrchr(repo, ':');
		const char *tag = "latest";
		if (colon && !strchr(colon, '/')) {
			*colon = '\0';
			tag = colon + 1;
		}
		char size[32];
		human_size(img->size, size, sizeof(size));
		if (quiet) {
			if (!strv_contains(seen, img->id))
				printf("%.12s\n", img->id);
			strv_push(&seen, img->id);
		} else if (json)
			json_array_append_new(
			    rows,
			    json_pack("{s:s+, s:s, s:s, s:s, s:I}", "ID",
				      "sha256:", img->id, "ContainerName",
				      names[i], "Repository", repo, "Tag", tag,
				      "Size", (json_int_t)img->size));
		else
			printf("%-30s %-30s %-12s %-14.12s %s\n", names[i],
			       repo, tag, img->id, size);
	}
	if (json) {
		_cleanup_free_ char *txt = json_dumps(rows, JSON_COMPACT);
		printf("%s\n", txt);
	}
	json_decref(rows);
	if (r == 0)
		pstate_close(&ps);
	return 0;
}

int cmd_images(int argc, char **argv)
{
	static const char usage[] =
	    "[-q] [--digests] [--format table|json] [SERVICE...]";
	if (args_want_help(argc, argv)) {
		printf("Usage: orch images %s\n\n"
		       "In a project (a compose file here or above, or -f/-p): "
		       "the images of its\ncontainers.  Elsewhere: every "
		       "image, as `orch image ls`.\n",
		       usage);
		return 0;
	}
	return in_project() ? project_images(argc, argv, usage)
			    : images_ls(argc, argv);
}

int cmd_image(int argc, char **argv)
{
	if (argc < 2)
		return image_usage(stderr, 2);
	const char *sub = argv[1];
	if (streq(sub, "--help") || streq(sub, "-h") || streq(sub, "help") ||
	    (!streq(sub, "build") && args_want_help(argc - 1, argv + 1)))
		return image_usage(stdout, 0);
	if (streq(sub, "ls") || streq(sub, "list"))
		return images_ls(argc - 1, argv + 1);
	if (streq(sub, "import"))
		return image_import(argc - 1, argv + 1);
	if (streq(sub, "load"))
		return image_load(argc - 1, argv + 1);
	if (streq(sub, "rm") || streq(sub, "remove"))
		return image_rm(argc - 1, argv + 1);
	if (streq(sub, "inspect"))
		return image_inspect(argc - 1, argv + 1);
	if (streq(sub, "tag"))
		return image_tag(argc - 1, argv + 1);
	if (streq(sub, "build"))
		return cmd_image_build(argc - 1, argv + 1);
	if (streq(sub, "pull"))
		return cmd_image_pull(argc - 1, argv + 1);
	if (streq(sub, "push"))
		return cmd_image_push(argc - 1, argv + 1);
	fprintf(stderr, "orch image: unknown command \"%s\"\n", sub);
	return image_usage(stderr, 2);
}
