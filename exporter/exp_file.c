/*
 * exp_file.c — the JSON Lines trace file: path rule, directory creation and
 * the flock'd batch append.
 *
 * Invariant: every byte this file writes belongs to a whole line written
 * while holding flock(LOCK_EX) on the file, so lines from many threads and
 * processes never interleave; when a write fails part-way the file is cut
 * back to the last complete line we wrote; a partial last line left by a
 * writer that was killed is ended with '\n' before our first record.
 *
 * Each append opens its own descriptor (O_CLOEXEC) and closes it again:
 * no agent fd lives across batches for the application to close or dup2
 * over, a rotated/deleted file is followed at the next batch, and a fork
 * child never inherits a long-lived descriptor. The lock is released with
 * an explicit LOCK_UN before close(): a fork child holding a copy of the
 * descriptor would otherwise keep the lock alive (flock locks belong to
 * the open file description, not the process).
 *
 * Thread safety: all functions may be called from any thread; the only
 * shared state is the once-per-kind "already logged" flags (atomics).
 */
#include "exp_internal.h"

#include "xv_common.h"
#include "xv_knobs.h"
#include "xv_real.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* One flag per failure kind: the first failure of each is logged, later
 * ones are only counted (by the caller's stats). */
static struct {
    atomic_int open_logged;   /* open/mkdir failure already logged */
    atomic_int lock_logged;   /* flock failure already logged */
    atomic_int write_logged;  /* write failure already logged */
    atomic_int json_logged;   /* serialisation failure already logged */
    /* Where our last batch left the file: its device, inode and size right
     * after our last whole line (0 = nothing known). Written and read only
     * while holding the file's flock, which every append of this process
     * takes on its own descriptor, so they never change under a reader;
     * atomics only because the lock is not something the compiler sees. */
    _Atomic uint64_t left_dev, left_ino, left_size;
} g_file XV_CALL_DATA; /* a first record writes left_*: with the other data a first
                          call touches, not on a .bss page of its own (issue 9) */

/* a b c joined: in buf when it fits (cap > 0), else in a new allocation. */
XV_START_FN static char *join3(const char *a, const char *b, const char *c, char *buf, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *p = la + lb + lc < cap ? buf : malloc(la + lb + lc + 1);
    if (!p)
        return NULL;
    /* byte copies of a short path: libc's memcpy sits on a page of its
     * code that /bin/true never touches (a fault at every start, issue 9) */
    for (size_t i = 0; i < la; i++)
        p[i] = a[i];
    for (size_t i = 0; i < lb; i++)
        p[la + i] = b[i];
    for (size_t i = 0; i <= lc; i++)
        p[la + lb + i] = c[i];
    return p;
}

XV_START_FN char *xv_exp_file_default_path_in(const char *explicit_path, char *buf, size_t cap)
{
    if (explicit_path && *explicit_path)
        return join3(explicit_path, "", "", buf, cap);
    /* secure: in a setuid process the environment is not trusted
     * to pick which file we append to (the preload is inert there anyway). */
    const char *env = xv_secure_getenv("XENOVIA_TRACE_FILE");
    if (env && *env)
        return join3(env, "", "", buf, cap);
    /* The XDG base-dir spec says relative values are invalid: ignore them. */
    const char *xdg = xv_secure_getenv("XDG_STATE_HOME");
    if (xdg && xdg[0] == '/')
        return join3(xdg, "", "/xenovia/traces.jsonl", buf, cap);
    const char *home = xv_secure_getenv("HOME");
    if (home && home[0] == '/')
        return join3(home, "", "/.local/state/xenovia/traces.jsonl", buf, cap);
    /* No HOME (daemons, some CI runners): ask the passwd database. */
    struct passwd pw, *res = NULL;
    char pwbuf[4096];
    if (getpwuid_r(getuid(), &pw, pwbuf, sizeof pwbuf, &res) == 0 && res && res->pw_dir &&
        res->pw_dir[0] == '/')
        return join3(res->pw_dir, "", "/.local/state/xenovia/traces.jsonl", buf, cap);
    return NULL;
}

char *xv_exp_file_default_path(const char *explicit_path)
{
    return xv_exp_file_default_path_in(explicit_path, NULL, 0);
}

int xv_exp_file_mkdirs(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -ENOMEM;
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) {   /* relative file in cwd, or in "/" */
        free(dir);
        return 0;
    }
    *slash = '\0';
    int rc = 0;
    /* Walk the components left to right; an existing one is left alone
     * (its mode is the user's business), a new one gets exactly 0700. */
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0700) == 0) {
            /* A umask such as 0277 would have removed owner bits. */
            chmod(dir, 0700);
        } else if (errno != EEXIST) {
            rc = -errno;
            *p = saved;
            break;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(dir);
    return rc;
}

/* Open for appending; creates the file (0600) and its directories when
 * missing. Returns the fd or -errno. */
static int open_trace(const char *path)
{
    int err = ENOENT;
    /* O_NONBLOCK only for the open itself: a FIFO without a reader would
     * otherwise block here forever (it fails with ENXIO instead). */
    const int base = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    for (int attempt = 0; attempt < 4; attempt++) {
        int fd = open(path, base);    /* the common case: it exists (one system call) */
        if (fd >= 0)
            return fd;
        err = errno;
        if (err != ENOENT)
            return -err;
        fd = open(path, base | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            /* We created it: make the mode exactly 0600 whatever the umask. */
            fchmod(fd, 0600);
            return fd;
        }
        err = errno;
        if (err == ENOENT) {          /* a directory is missing */
            int rc = xv_exp_file_mkdirs(path);
            if (rc < 0)
                return rc;
            continue;
        }
        if (err != EEXIST)            /* EEXIST: created in between, retry */
            return -err;
    }
    return -err;
}

static int write_all(int fd, const char *p, size_t n)
{
    return xv_write_all(fd, p, n);   /* common/bytes.c */
}

#define FILE_IOV_LINES 32 /* writev of up to twice this many iovecs (IOV_MAX is 1024): its
                             * iovecs are 1 KiB of the caller's stack, which a first
                             * record of an application thread faults in (issue 9) */


/* Does the regular file `st` (the one we hold locked) end in '\n'? Our
 * descriptor is write-only (a FIFO must never be opened for reading), so a
 * second, read-only one is opened and checked to be the same file. On any
 * doubt: "yes" (a spurious empty line is not written, nothing is lost). */
static int ends_with_newline(const char *path, const struct stat *st)
{
    int rfd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (rfd < 0)
        return 1;
    struct stat rst;
    char last = '\n';
    if (fstat(rfd, &rst) == 0 && rst.st_dev == st->st_dev && rst.st_ino == st->st_ino &&
        S_ISREG(rst.st_mode) && rst.st_size >= st->st_size) {
        while (pread(rfd, &last, 1, st->st_size - 1) < 0 && errno == EINTR) {
        }
    }
    XV_REAL(close)(rfd);
    return last == '\n';
}

static void log_once(atomic_int *flag, const char *what, const char *path, int rc)
{
    if (atomic_exchange(flag, 1) == 0)
        xv_log(XV_LOG_ERROR, "trace file %s: %s failed: %s (records are counted as failed; "
               "set XENOVIA_TRACE_FILE to a writable path)", path, what, xv_strerror(rc));
}

int xv_exp_file_append(const char *path, const char *const *lines, const size_t *lens, size_t n,
                       size_t *written, int try_only)
{
    *written = 0;
    if (!n)
        return 0;
    if (!path)
        return try_only ? -EAGAIN : XV_E_CONFIG;
    int fd = open_trace(path);
    if (fd < 0) {
        if (try_only)
            return -EAGAIN;
        log_once(&g_file.open_logged, "open", path, fd);
        return fd;
    }
    /* The lock first: the size read after it is where our first byte
     * lands (O_APPEND writes go to the end, and with the lock held nobody
     * else moves it; used to cut back on failure). try_only takes only a
     * lock that is free at once. Some network filesystems refuse flock
     * (ENOLCK): the others write anyway, O_APPEND still keeps each
     * write(2) at the end of the file. */
    int locked = 1;
    while (flock(fd, try_only ? LOCK_EX | LOCK_NB : LOCK_EX) < 0) {
        if (errno == EINTR && !try_only)
            continue;
        if (try_only) {
            XV_REAL(close)(fd);
            return -EAGAIN;
        }
        log_once(&g_file.lock_logged, "flock", path, -errno);
        locked = 0;
        break;
    }
    struct stat st;
    int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    /* try_only writes only a regular file: a FIFO could make it wait. */
    if (try_only && !regular) {
        flock(fd, LOCK_UN);
        XV_REAL(close)(fd);
        return -EAGAIN;
    }
    /* Back to blocking writes (see open_trace); O_NONBLOCK means nothing
     * to a regular file, so only the others pay for the two calls. */
    if (!regular) {
        int fl = XV_REAL(fcntl)(fd, F_GETFL);
        if (fl >= 0 && (fl & O_NONBLOCK))
            XV_REAL(fcntl)(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    off_t good = locked && regular ? st.st_size : -1;
    /* The read-back (four system calls) only when someone else may have
     * written since our last batch: a file exactly as we left it ends with
     * our own '\n'. */
    int as_left = good > 0 && atomic_load(&g_file.left_size) == (uint64_t)good &&
                  atomic_load(&g_file.left_ino) == (uint64_t)st.st_ino &&
                  atomic_load(&g_file.left_dev) == (uint64_t)st.st_dev;
    if (good > 0 && !as_left && !ends_with_newline(path, &st))
        /* A writer killed mid-line (issue 7 class 8) left a partial last
         * line: end it, or our first record would be glued to it and lost
         * to every reader. The partial line stays unparsable, alone. */
        if (write_all(fd, "\n", 1) == 0)
            good += 1;

    /* The lines and their newlines go out by writev straight from where
     * the exporter holds them: no copy into a chunk buffer, whose pages,
     * freed after every batch, were faulted in again by the next one
     * (issue 9). A batch is several writevs of at most 2 * FILE_IOV_LINES
     * iovecs; `good` advances by whole writevs only. */
    struct iovec iov[2 * FILE_IOV_LINES];
    int io_rc = 0;           /* first write error; stops the batch */
    int json_rc = 0;         /* a record could not be serialised; others go on */
    size_t niov = 0;
    size_t pending = 0;      /* records in iov not yet written */
    size_t bytes = 0;        /* their bytes, newlines included */
    for (size_t i = 0; i <= n && io_rc == 0; i++) {
        if (i < n && !lines[i]) {
            if (atomic_exchange(&g_file.json_logged, 1) == 0)
                xv_log(XV_LOG_ERROR, "trace record could not be serialised (out of memory)");
            json_rc = XV_E_NOMEM;
            continue;
        }
        if (niov && (i == n || niov + 2 > sizeof iov / sizeof iov[0])) {
            io_rc = xv_writev_all(fd, iov, (int)niov);
            if (io_rc == 0) {
                if (good >= 0)
                    good += (off_t)bytes;
                *written += pending;
            }
            niov = pending = bytes = 0;
        }
        if (i == n || io_rc != 0)
            break;
        /* A line that carries its '\n' (a record line never holds one
         * otherwise) is one run of bytes, merged with the previous run when
         * it starts where that ends: the exporter's queued lines lie end
         * to end, so a batch is one iovec or two instead of two a line
         * (the kernel copies and checks each segment on its own, issue 9). */
        int own_nl = lens[i] > 0 && lines[i][lens[i] - 1] == '\n';
        if (own_nl && niov &&
            (const char *)iov[niov - 1].iov_base + iov[niov - 1].iov_len == lines[i]) {
            iov[niov - 1].iov_len += lens[i];
        } else {
            iov[niov].iov_base = (void *)lines[i];
            iov[niov++].iov_len = lens[i];
        }
        if (!own_nl) {
            iov[niov].iov_base = (void *)"\n";
            iov[niov++].iov_len = 1;
        }
        pending++;
        bytes += lens[i] + (size_t)!own_nl;
    }
    if (io_rc < 0) {
        /* Disk full or similar: drop the partial line so the file stays
         * valid JSON Lines for every reader (only safe while we hold the
         * lock: nobody else has appended behind us). */
        if (good >= 0)
            while (ftruncate(fd, good) < 0 && errno == EINTR) {
            }
        log_once(&g_file.write_logged, "write", path, io_rc);
    }
    if (good > 0 && io_rc == 0) {
        atomic_store(&g_file.left_dev, (uint64_t)st.st_dev);
        atomic_store(&g_file.left_ino, (uint64_t)st.st_ino);
        atomic_store(&g_file.left_size, (uint64_t)good);
    } else if (locked && regular) {
        atomic_store(&g_file.left_size, 0);
    }
    if (locked)
        flock(fd, LOCK_UN);
    XV_REAL(close)(fd);
    return io_rc < 0 ? io_rc : json_rc;
}
