/* orch ps (the project's containers) and orch ls (every project on the
 * host), with docker compose's columns and JSON field names. */
#include "orchestrator/cli/cli.h"
#include "runtime/runtime.h"

#include <pwd.h>
#include <time.h>

static time_t parse_ts(const char *s)
{
	if (!s || !*s)
		return 0;
	struct tm tm = {0};
	if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	return timegm(&tm);
}

/* Docker's human durations: "5 seconds", "About a minute", "3 hours". */
static char *human(time_t secs)
{
	if (secs < 1)
		return xstrdup("Less than a second");
	if (secs == 1)
		return xstrdup("1 second");
	if (secs < 60)
		return xasprintf("%ld seconds", (long)secs);
	if (secs < 120)
		return xstrdup("About a minute");
	if (secs < 3600)
		return xasprintf("%ld minutes", (long)secs / 60);
	if (secs < 7200)
		return xstrdup("About an hour");
	if (secs < 48 * 3600)
		return xasprintf("%ld hours", (long)secs / 3600);
	return xasprintf("%ld days", (long)secs / 86400);
}

static char *status_text(json_t *st)
{
	const char *state = st ? jstr(st, "state") : "created";
	time_t now = time(NULL);
	if (streq(state, "running")) {
		_cleanup_free_ char *h =
			human(now - parse_ts(jstr(st, "started_at")));
		const char *health = jstr(st, "health");
		if (jbool(st, "paused"))
			return xasprintf("Up %s (Paused)", h);
		if (health && *health)
			return xasprintf("Up %s (%s)", h, health);
		return xasprintf("Up %s", h);
	}
	if (streq(state, "exited") || streq(state, "restarting")) {
		_cleanup_free_ char *h =
			human(now - parse_ts(jstr(st, "finished_at")));
		return xasprintf("%s (%d) %s ago",
				 streq(state, "exited") ? "Exited"
							: "Restarting",
				 (int)jint(st, "exit_code", 0), h);
	}
	return xstrdup("Created");
}

static char *ports_text(json_t *ports)
{
	struct strbuf sb;
	sb_init(&sb);
	size_t i;
	json_t *p;
	json_array_foreach(ports, i, p)
	{
		const char *url = jstr(p, "URL");
		bool v6 = strchr(url, ':') != NULL;
		sb_printf(&sb, "%s%s%s%s:%d->%d/%s", i ? ", " : "",
			  v6 ? "[" : "", url, v6 ? "]" : "",
			  (int)jint(p, "PublishedPort", 0),
			  (int)jint(p, "TargetPort", 0), jstr(p, "Protocol"));
	}
	return sb_steal(&sb);
}

static json_t *ps_json(struct pstate *ps, json_t *rec, json_t *st)
{
	char created[40];
	time_t ct = (time_t)jint(rec, "created", 0);
	struct tm tm;
	localtime_r(&ct, &tm);
	strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S %z %Z", &tm);
	_cleanup_free_ char *status = status_text(st);
	/* As docker: a container publishes its ports only while it runs. */
	bool up = st && streq(jstr(st, "state") ?: "", "running");
	json_t *pubs = up ? json_object_get(rec, "ports") : NULL;
	json_t *labels = json_object_get(rec, "labels");
	_cleanup_free_ char *ports = ports_text(pubs);
	_cleanup_free_ char *running = human(time(NULL) - ct);
	json_t *nets = json_array();
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(rec, "networks"), i, n)
		json_array_append_new(nets, json_string(jstr(n, "network")));
	/* The user namespace: host, or the project's range (inside:host:
	 * count, as podman's --uidmap). */
	json_t *spec = json_object_get(rec, "spec");
	json_int_t base = jint(spec, "userns_base", 0);
	json_t *map = jbool(spec, "userns") && base
			      ? json_sprintf("0:%lld:%u", (long long)base,
					     RT_IDRANGE_SIZE)
			      : json_string("");
	json_t *o = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:s, "
		"s:s, s:s, s:o, s:o, s:s, s:I}",
		"ID", jstr(rec, "id"), "Name", jstr(rec, "name"), "Image",
		jstr(rec, "image") ?: "", "Command", jstr(rec, "command") ?: "",
		"Project", ps->name, "Service", jstr(rec, "service") ?: "",
		"State",
		!st		       ? "created"
		: jbool(st, "paused") ? "paused"
				       : jstr(st, "state"),
		"Health",
		st ? jstr(st, "health") : "", "ExitCode",
		(json_int_t)(st ? jint(st, "exit_code", 0) : 0), "Publishers",
		pubs ? json_incref(pubs) : json_array(), "Status", status,
		"CreatedAt", created, "Ports", ports, "Networks", nets,
		"Labels", labels ? json_incref(labels) : json_object(),
		"RunningFor",
		running, "RestartCount",
		(json_int_t)(st ? jint(st, "restarts", 0) : 0));
	json_object_set_new(o, "UsernsMode",
			    json_string(*json_string_value(map) ? "private"
								: "host"));
	json_object_set(o, "UidMap", map);
	json_object_set_new(o, "GidMap", map);
	return o;
}

enum {
	O_FORMAT = CLI_OPT_LOCAL,
	O_SERVICES,
	O_STATUS,
	O_FILTER,
	O_NO_TRUNC,
	O_ORPHANS
};

/* A cell of a table padded to width columns and followed by the column
 * gap; width 0 is the last column, which ends the line. */
static void print_cell(const char *text, size_t width)
{
	fputs(text, stdout);
	if (!width) {
		putchar('\n');
		return;
	}
	for (size_t c = text_columns(text, SIZE_MAX, NULL); c < width + 3; c++)
		putchar(' ');
}

int cmd_ps(int argc, char **argv)
{
	static const char usage[] = "[-a] [-q] [--format table|json|TEMPLATE] "
				    "[--services] [--status S] "
				    "[--filter status=S] [SERVICE...]";
	static const struct option lopts[] = {
		CLI_GLOBAL_LONGOPTS,
		{"all", no_argument, NULL, 'a'},
		{"quiet", no_argument, NULL, 'q'},
		{"format", required_argument, NULL, O_FORMAT},
		{"services", no_argument, NULL, O_SERVICES},
		{"status", required_argument, NULL, O_STATUS},
		{"filter", required_argument, NULL, O_FILTER},
		{"no-trunc", no_argument, NULL, O_NO_TRUNC},
		{"orphans", no_argument, NULL, O_ORPHANS},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool all = false, quiet = false, services = false, json = false;
	const char *tmpl = NULL;
	_cleanup_strv_ char **status_filter = NULL;
	int c;
	optind = 1;
	while ((c = cli_getopt(argc, argv, "aqh" CLI_GLOBAL_SHORTOPTS,
			       lopts)) != -1) {
		if (c == CLI_OPT_BAD)
			return 2;
		switch (c) {
		case 'a':
			all = true;
			break;
		case 'q':
			quiet = true;
			break;
		case O_FORMAT:
			json = streq(optarg, "json");
			tmpl = json || streq(optarg, "table") ? NULL : optarg;
			break;
		case O_SERVICES:
			services = true;
			break;
		case O_FILTER:
			/* compose takes status=S alone. */
			if (!startswith(optarg, "status=")) {
				fprintf(stderr,
					"orch ps: invalid --filter \"%s\": "
					"want status=STATE\n",
					optarg);
				return 2;
			}
			strv_push(&status_filter, optarg + 7);
			all = true;
			break;
		case O_STATUS:
			strv_push(&status_filter, optarg);
			all = true;
			break;
		case O_NO_TRUNC:
		case O_ORPHANS:
			break;
		case 'h':
			printf("Usage: orch ps %s\n", usage);
			return 0;
		default:
			return cli_usage("ps", usage);
		}
	}
	struct pstate ps;
	struct orch_err e = {0};
	_cleanup_project_ struct project *m = NULL;
	int r = cli_read(&ps, &m, &e);
	if (r == -ENOENT) {
		if (tmpl) {
			json_auto_t *none = json_array();
			return format_print(tmpl, none, &e) < 0 ? cli_fail(&e)
								 : 0;
		}
		if (!quiet && !services && !json)
			printf("NAME      IMAGE     COMMAND   SERVICE   CREATED   "
			       "STATUS    PORTS\n");
		return 0;
	}
	if (r < 0)
		return cli_fail(&e);
	if (pstate_open_networks(&ps) && !quiet && !json)
		fprintf(stderr,
			"orch: the networks of project %s are open (up "
			"--open-networks): every service may connect to every "
			"other, as in docker compose\n",
			ps.name);
	json_t *st = NULL;
	if (status_get(&ps, &st, &e) < 0) {
		pstate_close(&ps);
		return cli_fail(&e);
	}
	_cleanup_strv_ char **svcs = NULL;
	for (int i = optind; i < argc; i++)
		strv_push(&svcs, argv[i]);
	const char *unknown;
	strv_free(containers_of(&ps, m, svcs, &unknown));
	if (unknown) {
		json_decref(st);
		pstate_close(&ps);
		fprintf(stderr, "orch: no such service: %s\n", unknown);
		return 1;
	}
	json_t *rows = json_array();
	size_t i;
	json_t *rec;
	json_array_foreach(state_containers(&ps), i, rec)
	{
		const char *svc = jstr(rec, "service") ?: "";
		if (svcs && !strv_contains(svcs, svc))
			continue;
		json_t *s = json_find_named(st, jstr(rec, "name"));
		const char *state = s ? jstr(s, "state") : "created";
		if (status_filter && !strv_contains(status_filter, state))
			continue;
		if (!all && !streq(state, "running") &&
		    !streq(state, "restarting"))
			continue;
		json_array_append_new(rows, ps_json(&ps, rec, s));
	}
	json_t *row;
	if (services) {
		_cleanup_strv_ char **seen = NULL;
		json_array_foreach(rows, i, row)
		{
			const char *svc = jstr(row, "Service");
			if (!strv_contains(seen, svc)) {
				strv_push(&seen, svc);
				printf("%s\n", svc);
			}
		}
	} else if (quiet) {
		json_array_foreach(rows, i, row) printf("%s\n", jstr(row, "ID"));
	} else if (tmpl) {
		r = format_print(tmpl, rows, &e);
	} else if (json) {
		json_array_foreach(rows, i, row)
		{
			char *t = json_dumps(row, JSON_COMPACT);
			printf("%s\n", t);
			free(t);
		}
	} else {
		const char *hdr[] = {"NAME",	"IMAGE",  "COMMAND", "SERVICE",
				     "CREATED", "STATUS", "PORTS"};
		const char *keys[] = {"Name",	   "Image",  "Command", "Service",
				      "RunningFor", "Status", "Ports"};
		size_t w[7];
		for (int k = 0; k < 7; k++)
			w[k] = strlen(hdr[k]);
		size_t n = json_array_size(rows);
		char **cells = xcalloc(n * 7 + 1, sizeof(char *));
		json_array_foreach(rows, i, row) for (int k = 0; k < 7; k++)
		{
			const char *v = jstr(row, keys[k]);
			char **cell = &cells[i * 7 + k];
			size_t cut;
			if (k == 2 && text_columns(v, SIZE_MAX, NULL) > 18) {
				text_columns(v, 17, &cut);
				*cell = xasprintf("\"%.*s…\"", (int)cut, v);
			} else if (k == 2) {
				*cell = xasprintf("\"%s\"", v);
			} else if (k == 4) {
				*cell = xasprintf("%s ago", v);
			} else {
				*cell = xstrdup(v);
			}
			size_t cols = text_columns(*cell, SIZE_MAX, NULL);
			if (k < 6 && cols > w[k])
				w[k] = cols;
		}
		for (int k = 0; k < 7; k++)
			print_cell(hdr[k], k < 6 ? w[k] : 0);
		for (size_t r = 0; r < n; r++)
			for (int k = 0; k < 7; k++)
				print_cell(cells[r * 7 + k], k < 6 ? w[k] : 0);
		strv_free(cells);
	}
	json_decref(rows);
	json_decref(st);
	pstate_close(&ps);
	return r < 0 ? cli_fail(&e) : 0;
}

/* ---- ls ------------------------------------------------------------------- */

int cmd_ls(int argc, char **argv)
{
	static const char usage[] = "[-a] [-q] [--format table|json]";
	static const struct option lopts[] = {
		{"all", no_argument, NULL, 'a'},
		{"quiet", no_argument, NULL, 'q'},
		{"format", required_argument, NULL, O_FORMAT},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool all = false, quiet = false, json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "aqh", lopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			all = true;
			break;
		case 'q':
			quiet = true;
			break;
		case O_FORMAT:
			if (streq(optarg, "json"))
				json = true;
			else if (!streq(optarg, "table"))
				return cli_usage("ls", usage);
			break;
		case 'h':
			printf("Usage: orch ls %s\n", usage);
			return 0;
		default:
			return cli_usage("ls", usage);
		}
	}
	if (optind < argc)
		return cli_usage("ls", usage);
	_cleanup_strv_ char **names = NULL;
	struct orch_err e = {0};
	if (pstate_list(&names, &e) < 0)
		return cli_fail(&e);
	json_t *rows = json_array();
	for (size_t i = 0; names && names[i]; i++) {
		/* Read without locking: ls must not wait for a busy project. */
		_cleanup_free_ char *sf = xasprintf(
			"%s/projects/%s/state.json", orch_run(), names[i]);
		_cleanup_free_ char *stf = xasprintf(
			"%s/projects/%s/status.json", orch_run(), names[i]);
		json_auto_t *state = json_load_file(sf, 0, NULL);
		json_auto_t *status = json_load_file(stf, 0, NULL);
		if (!state)
			continue;
		const char *order[] = {"running", "restarting", "exited",
				       "created"};
		int counts[4] = {0};
		size_t k;
		json_t *rec;
		json_array_foreach(json_object_get(state, "containers"), k, rec)
		{
			json_t *s = json_object_get(status, jstr(rec, "name"));
			const char *st = s ? jstr(s, "state") : "created";
			for (int j = 0; j < 4; j++)
				if (streq(st, order[j]))
					counts[j]++;
		}
		if (!all && !counts[0] && !counts[1])
			continue;
		struct strbuf sb;
		sb_init(&sb);
		for (int j = 0; j < 4; j++)
			if (counts[j])
				sb_printf(&sb, "%s%s(%d)", sb.len ? ", " : "",
					  order[j], counts[j]);
		struct strbuf files;
		sb_init(&files);
		json_t *f;
		json_array_foreach(json_object_get(state, "config_files"), k, f)
			sb_printf(&files, "%s%s", k ? "," : "",
				  json_string_value(f));
		uid_t uid = (uid_t)jint(state, "owner_uid", 0);
		struct passwd *pw = getpwuid(uid);
		_cleanup_free_ char *owner =
			pw ? xstrdup(pw->pw_name) : xasprintf("%u", uid);
		json_array_append_new(
			rows, json_pack("{s:s, s:s, s:s, s:s, s:s}", "Name",
					names[i], "Status",
					sb.len ? sb.buf : "empty", "ConfigFiles",
					files.buf, "Owner",
					owner, "WorkingDir",
					jstr(state, "working_dir") ?: ""));
		sb_free(&sb);
		sb_free(&files);
	}
	size_t i;
	json_t *row;
	if (json) {
		char *t = json_dumps(rows, JSON_COMPACT);
		printf("%s\n", t);
		free(t);
	} else if (quiet) {
		json_array_foreach(rows, i, row) printf("%s\n", jstr(row, "Name"));
	} else {
		printf("%-20s %-24s %-10s %s\n", "NAME", "STATUS", "OWNER",
		       "CONFIG FILES");
		json_array_foreach(rows, i, row)
			printf("%-20s %-24s %-10s %s\n", jstr(row, "Name"),
			       jstr(row, "Status"), jstr(row, "Owner"),
			       jstr(row, "ConfigFiles"));
	}
	json_decref(rows);
	return 0;
}
