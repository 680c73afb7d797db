/* SPDX-License-Identifier: MIT */
/* mesh: how apps hear about peers: the peer list as lines/JSON, the peers file, --on-change. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
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

/* NAME=VALUE's name matches entry's (both up to '='). */
static bool same_name(const char *entry, const char *name_value)
{
	size_t n = strcspn(name_value, "=");

	return !strncmp(entry, name_value, n) && entry[n] == '=';
}

/*
 * The command's environment: ours, with each override replacing the entry of its name in
 * place and the others appended in order (what setenv and putenv do in a forked child).
 */
static char **spawn_env(const char *const *over, size_t n_over)
{
	size_t n = 0, k = 0;
	bool *used;
	char **envp;

	while (environ && environ[n])
		n++;
	envp = calloc(n + n_over + 1, sizeof(*envp));
	used = calloc(n_over + 1, sizeof(*used));
	if (!envp || !used) {
		free(envp);
		free(used);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *e = environ[i];

		/* the last override of a name wins, as the last putenv does */
		for (size_t j = 0; j < n_over; j++)
			if (same_name(environ[i], over[j])) {
				e = over[j];
				used[j] = true;
			}
		envp[k++] = (char *)e;
	}
	for (size_t j = 0; j < n_over; j++) {
		bool later = false;

		for (size_t l = j + 1; l < n_over && !later; l++)
			later = same_name(over[l], over[j]);
		if (!used[j] && !later)
			envp[k++] = (char *)over[j];
	}
	free(used);
	return envp;
}

/*
 * posix_spawn (a vfork-like clone in glibc), not fork: a fork copies the agent's page
 * tables and every page the agent writes afterwards faults once (copy on write), which
 * was most of the CPU of a change at 16-254 peers (docs/memory.md).
 */
int mesh_run_on_change(const char *command, const char *peer_lines, const char *const *env)
{
	const char **over;
	char *const argv[] = { "sh", "-c", (char *)command, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, pipe_only;
	size_t n_over = 0, n_env = 0;
	char *flat, **envp = NULL;
	int pipefd[2], r;
	pid_t pid;

	/* A space-separated copy too, for commands that prefer an argument. */
	while (env && env[n_env])
		n_env++;
	flat = malloc(strlen("DSTACK_P2P_PEERS=") + strlen(peer_lines) + 1);
	over = calloc(n_env + 1, sizeof(*over));
	if (!flat || !over) {
		r = -ENOMEM;
		goto out;
	}
	strcpy(flat, "DSTACK_P2P_PEERS=");
	strcat(flat, peer_lines);
	for (char *c = flat; *c; c++)
		if (*c == '\n')
			*c = ' ';
	over[n_over++] = flat;
	for (size_t i = 0; i < n_env; i++)
		over[n_over++] = env[i];
	envp = spawn_env(over, n_over);
	if (!envp) {
		r = -ENOMEM;
		goto out;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = -errno;
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* The command gets the signals the agent blocks for its signalfd, and SIGPIPE's default. */
	sigemptyset(&none);
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &pipe_only);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawn_file_actions_adddup2(&fa, pipefd[0], STDIN_FILENO);
	r = -posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(pipefd[0]);
	if (r < 0) {
		close(pipefd[1]);
		goto out;
	}
	/* The list is small (<= 254 lines); a command that ignores stdin must not block us. */
	fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
	if (write(pipefd[1], peer_lines, strlen(peer_lines)) < 0 && errno != EAGAIN && errno != EPIPE)
		log_debug("on-change: writing the peer list: %s", strerror(errno));
	close(pipefd[1]);
out:
	free(envp);
	free(over);
	free(flat);
	return r;
}

void mesh_reap_children(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (WIFEXITED(status) && WEXITSTATUS(status))
			log_warn("on-change command (pid %d) exited with status %d", (int)pid, WEXITSTATUS(status));
}
