/* trn_par.c: a parallel for over [0, n) split into nthreads contiguous ranges.
 * The split depends only on n and nthreads, so per-thread partial sums reduce
 * in a fixed order and results are reproducible run to run. Threads are
 * created per call (tens of microseconds, against milliseconds of work). */
#include "trn.h"

#include <pthread.h>

typedef struct {
    trn_par_fn fn;
    void *ctx;
    int tid;
    int64_t i0, i1;
} par_job;

static void *run_job(void *arg)
{
    par_job *j = arg;
    j->fn(j->ctx, j->tid, j->i0, j->i1);
    return NULL;
}

void trn_par_for(int nthreads, int64_t n, trn_par_fn fn, void *ctx)
{
    if (nthreads > TRN_MAX_THREADS)
        nthreads = TRN_MAX_THREADS;
    if (nthreads > n)
        nthreads = (int)(n > 0 ? n : 1);
    if (nthreads <= 1) {
        fn(ctx, 0, 0, n);
        return;
    }
    par_job jobs[TRN_MAX_THREADS];
    pthread_t th[TRN_MAX_THREADS];
    int started[TRN_MAX_THREADS] = {0};
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = (par_job){fn, ctx, t, n * t / nthreads, n * (t + 1) / nthreads};
        if (t > 0)
            started[t] = pthread_create(&th[t], NULL, run_job, &jobs[t]) == 0;
    }
    run_job(&jobs[0]);
    for (int t = 1; t < nthreads; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            run_job(&jobs[t]); /* could not start a thread: do its share here */
    }
}
