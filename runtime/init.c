/* The tiny init (init: true): PID 1 of the container forks the user's
 * command, forwards every signal it gets to it, reaps every zombie, and
 * exits with the command's status. */
#include "runtime/container_impl.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void on_signal(int sig)
{
	(void)sig;
}

int init_reaper_fork(struct orch_err *e)
{
	/* PID 1 only receives signals it has a handler for; with every signal
	 * blocked and handled, sigwaitinfo picks them all up. */
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	struct sigaction sa = {.sa_handler = on_signal};
	sigfillset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);
	pid_t child = fork();
	if (child < 0)
		return err_sys(e, errno, "forking the command under init");
	if (child == 0) {
		struct sigaction dfl = {.sa_handler = SIG_DFL};
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				sigaction(sig, &dfl, NULL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 0;
	}
	/* The reaper lives as long as the container: it must not hold any fd
	 * of whoever created it (a supervisor's sockets, locks and pipes would
	 * stay open, and a reader waiting for their end would wait forever),
	 * stdio included: the command has its own copies.  exec closes the
	 * command's CLOEXEC ones. */
	syscall(SYS_close_range, 0, ~0U, 0);
	/* Its memory, a copy of its creator's, is undumpable (child_main). */
	prctl(PR_SET_NAME, "orch-init", 0, 0, 0);
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		int status;
		pid_t p;
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != child)
				continue;
			_exit(WIFEXITED(status) ? WEXITSTATUS(status)
						: 128 + WTERMSIG(status));
		}
	}
}
