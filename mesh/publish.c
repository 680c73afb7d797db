/* SPDX-License-Identifier: MIT */
/* mesh: how apps hear about peers: the peer list as lines/JSON, the peers file, --on-change. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/common.h"
#include "mesh/mesh.h"

int mesh_peers_format_lines(const struct mesh_peer *peers, size_t n, struct buf *out)
{
	char addr[16];
	int r;

	for (size_t i = 0; i < n; i++) {
		r = buf_printf(out, "%s\n", mesh_peer_connect_string(&peers[i], addr));
		if (r < 0)
			return r;
	}
	return buf_terminate(out);
}

int mesh_peers_format_json(const struct mesh_peer *peers, size_t n, struct buf *out)
{
	char addr[16];
	int r;

	r = buf_printf(out, "[");
	for (size_t i = 0; i < n && r >= 0; i++) {
		r = buf_printf(out, "%s", i ? "," : "");
		if (r >= 0)
			r = json_append_string(out, mesh_peer_connect_string(&peers[i], addr));
	}
	if (r >= 0)
		r = buf_printf(out, "]");
	return r < 0 ? r : buf_terminate(out);
}

int mesh_write_file_atomic(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int fd, r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			r = w < 0 ? -errno : -EIO;
			goto err;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) < 0) {
		r = -errno;
		goto err;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
	}
	return r;
err:
	close(fd);
	unlink(tmp);
	return r;
}

int mesh_run_on_change(const char *command, const char *peer_lines, const char *const *env)
{
	int pipefd[2];
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int r = -errno;

		close(pipefd[0]);
		close(pipefd[1]);
		return r;
	}
	if (pid == 0) {
		/* A space-separated copy too, for commands that prefer an argument. */
		char *flat = strdup(peer_lines);
		sigset_t none;

		for (char *c = flat; c && *c; c++)
			if (*c == '\n')
				*c = ' ';
		if (flat)
			setenv("DSTACK_P2P_PEERS", flat, 1);
		for (size_t i = 0; env && env[i]; i++)
			putenv((char *)env[i]);  /* the child's copy of the parent's memory */
		/* The command gets the signals the agent blocks for its signalfd. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(pipefd[0], STDIN_FILENO);
		signal(SIGPIPE, SIG_DFL);
		execl("/bin/sh", "sh", "-c", command, (char *)NULL);
		_exit(127);
	}
	close(pipefd[0]);
	/* The list is small (<= 254 lines); a command that ignores stdin must not block us. */
	fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
	if (write(pipefd[1], peer_lines, strlen(peer_lines)) < 0 && errno != EAGAIN && errno != EPIPE)
		log_debug("on-change: writing the peer list: %s", strerror(errno));
	close(pipefd[1]);
	return 0;
}

void mesh_reap_children(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (WIFEXITED(status) && WEXITSTATUS(status))
			log_warn("on-change command (pid %d) exited with status %d", (int)pid, WEXITSTATUS(status));
}
