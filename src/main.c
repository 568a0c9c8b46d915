/* main.c - the dptrain command line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/comm.h"
#include "core/test_hold.h"
#include "core/timeline.h"
#include "dptrain/config.h"
#include "train/signals.h"
#include "core/blas.h"
#include "dptrain/train.h"
#include "dptrain_version.h"
#include "onnx/onnx_export.h"

#define MAIN_MAX_SETS 256

static const char *main_usage =
    "usage: dptrain train CONFIG [--set KEY=VALUE]... [--run-dir DIR] [--resume]\n"
    "                            [--stop-after STEPS] [--timeline PATH]\n"
    "                            [--timeline-steps A:B] [--stop-file PATH]\n"
    "       dptrain evaluate CKPT|RUN_DIR [--data PATH] [--split test|val|train]\n"
    "                        [--batch N] [--best] [--json]\n"
    "       dptrain predict CKPT|RUN_DIR --input IN.h5 [--dataset /test/x]\n"
    "                       --output OUT.h5 [--best] [--batch N]\n"
    "       dptrain generate CKPT|RUN_DIR --prompt TEXT [--length N] [--temperature T]\n"
    "                        [--top-k K] [--seed S]\n"
    "       dptrain summary CONFIG|CKPT|RUN_DIR [--ranks P] [--batch B] [--data PATH]\n"
    "       dptrain export CKPT|RUN_DIR --onnx OUT.onnx [--best]\n"
    "       dptrain config --explain\n"
    "       dptrain --help | --version\n"
    "\n"
    "Trains the model described by the YAML file CONFIG, data-parallel over the MPI\n"
    "ranks it is started on (mpirun -np N dptrain train CONFIG).\n"
    "config --explain lists every config key with its type, default, range and\n"
    "meaning; it runs as a plain process, without mpirun.\n"
    "evaluate prints the loss and metrics of a checkpoint (a run directory means its\n"
    "newest, --best its best.h5) over a split of its own dataset or of --data, as\n"
    "training computed them (the same bits); --json prints one JSON object.\n"
    "predict writes the model's outputs for every row of --dataset in IN.h5 to\n"
    "OUT.h5: /predictions float32 (probabilities for classifiers) and, for\n"
    "classifiers, /classes int32. Both run as a plain process or under mpirun,\n"
    "the ranks sharing the rows; --batch is the forward batch (default: the\n"
    "training batch).\n"
    "generate continues TEXT with a byte-level language model from a checkpoint\n"
    "(a run directory means its newest): --length bytes (200), sampled at\n"
    "--temperature (1; 0 is greedy) among the --top-k likeliest (0: all), the same\n"
    "text for the same --seed (0). It runs as a plain process, without mpirun.\n"
    "summary prints the layers with their output shapes, parameters and forward\n"
    "FLOPs per sample (a multiply-add counts 2), and the memory rank 0 needs on\n"
    "--ranks P (1) at global batch --batch B (train.batch_size), counting the rows\n"
    "of the data file (data.path, or --data PATH). A plain process, no mpirun.\n"
    "export writes the model of a checkpoint (a run directory means its newest, or\n"
    "its best.h5 with --best) as an ONNX file (opset 17) that takes raw rows as\n"
    "predict does and outputs its predictions (probabilities for classifiers).\n"
    "It runs as a plain process, without mpirun.\n"
    "\n"
    "  --set KEY=VALUE    override a config key by its dotted path, e.g.\n"
    "                     --set train.epochs=2 --set model.input=[20]\n"
    "  --run-dir DIR      where checkpoints and metrics.jsonl go\n"
    "                     (default: runs/<config name>)\n"
    "  --resume           continue from the newest valid checkpoint in DIR\n"
    "  --stop-after STEPS stop after STEPS steps of this run, writing a checkpoint\n"
    "  --stop-file PATH   stop as on SIGUSR1 (checkpoint, status 4) once PATH exists;\n"
    "                     rank 0 looks every 0.2 s and removes it after the checkpoint\n"
    "  --timeline PATH    write a Chrome trace-event JSON of every rank's spans (data,\n"
    "                     forward and backward per layer, gradient buckets, barriers,\n"
    "                     optimizer, evaluation, checkpoints) to PATH; open it in\n"
    "                     Perfetto or chrome://tracing (train.timeline)\n"
    "  --timeline-steps A:B  the global steps the timeline records, both included\n"
    "                     (default: the first 20 steps of this run; train.timeline_steps)\n"
    "  -h, --help         show this help\n"
    "  -V, --version      show the version\n"
    "\n"
    "Exit status: 0 done, 1 error, 2 bad command line, 3 stopped early (--stop-after),\n"
    "4 stopped by SIGUSR1, SIGTERM or --stop-file after writing a checkpoint (resume\n"
    "with --resume).\n";

typedef struct main_args {
    const char *config;
    char *sets[MAIN_MAX_SETS];
    int n_set;
    char run_dir[DP_PATH_MAX];
    dp_train_opts opts;
    int help, version;
} main_args;

/* Parses argv; returns 0 or -1 with a message in err. */
static int main_parse_args(int argc, char **argv, main_args *a, dp_error *err) {
    static const struct option longopts[] = {{"set", required_argument, NULL, 's'},
                                             {"run-dir", required_argument, NULL, 'd'},
                                             {"resume", no_argument, NULL, 'r'},
                                             {"stop-after", required_argument, NULL, 'S'},
                                             {"timeline", required_argument, NULL, 't'},
                                             {"timeline-steps", required_argument, NULL, 'T'},
                                             {"stop-file", required_argument, NULL, 'F'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (a->n_set == MAIN_MAX_SETS)
                return dp_error_set(err, "--set", "more than %d overrides", MAIN_MAX_SETS);
            a->sets[a->n_set++] = optarg;
            break;
        case 'd': snprintf(a->run_dir, sizeof a->run_dir, "%s", optarg); break;
        case 'r': a->opts.resume = 1; break;
        case 'S': {
            char *end;
            a->opts.stop_after = strtoll(optarg, &end, 10);
            if (*end || a->opts.stop_after < 1)
                return dp_error_set(err, "--stop-after", "expected a positive step count, got '%s'",
                                    optarg);
            break;
        }
        case 't':
            if (!optarg[0]) return dp_error_set(err, "--timeline", "expected a file path");
            a->opts.timeline = optarg;
            break;
        case 'T': {
            long long first, last;
            char why[160];
            if (dp_tl_parse_steps(optarg, &first, &last, why, sizeof why))
                return dp_error_set(err, "--timeline-steps", "%s", why);
            a->opts.timeline_steps = optarg;
            break;
        }
        case 'F':
            if (!optarg[0]) return dp_error_set(err, "--stop-file", "expected a file path");
            a->opts.stop_file = optarg;
            break;
        case 'h': a->help = 1; return 0;
        case 'V': a->version = 1; return 0;
        default:
            return dp_error_set(err, "usage",
                                "unknown or incomplete option '%s' (see dptrain --help)",
                                argv[optind - 1]);
        }
    }
    /* getopt_long permutes argv, so options may come before or after CONFIG. */
    if (optind >= argc) return dp_error_set(err, "usage", "missing command (see dptrain --help)");
    if (strcmp(argv[optind], "train") != 0)
        return dp_error_set(err, "usage",
                            "unknown command '%s' (known: train, evaluate, predict, generate, "
                            "summary, export, config)",
                            argv[optind]);
    if (optind + 1 >= argc) return dp_error_set(err, "usage", "train needs a CONFIG file");
    if (optind + 2 < argc)
        return dp_error_set(err, "usage", "unexpected argument '%s'", argv[optind + 2]);
    a->config = argv[optind + 1];
    if (!a->run_dir[0]) {
        const char *base = strrchr(a->config, '/');
        base = base ? base + 1 : a->config;
        size_t len = strcspn(base, ".");
        snprintf(a->run_dir, sizeof a->run_dir, "runs/%.*s", (int)len, base);
    }
    a->opts.run_dir = a->run_dir;
    return 0;
}

/* Restarts the program with OPENBLAS_CORETYPE set when OpenBLAS would otherwise
 * run its generic kernels on a CPU with AVX2 or AVX-512 (several times slower).
 * Done before MPI_Init, so the launcher never sees the first image. */
static void main_fix_blas_core(char **argv) {
    const char *core = dp_blas_pick_core();
    if (!core || setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
    dp_signals_before_exec(); /* a stop signal recorded so far stays pending */
    execv("/proc/self/exe", argv);
    /* If exec fails we simply go on with the generic kernels. */
    dp_signals_after_failed_exec();
}

/* `dptrain config --explain`: prints the config schema. Handled before MPI is
 * initialized, so it runs as a plain process without mpirun. */
static int main_config_command(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[2], "--explain") == 0)
        return dp_config_explain(stdout) ? DP_EXIT_ERROR : DP_EXIT_OK;
    dp_error err = {0};
    dp_error_set(&err, "usage", "config takes --explain (see dptrain --help)");
    dp_error_print(&err);
    return DP_EXIT_USAGE;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "config") == 0) return main_config_command(argc, argv);
    if (argc > 1 && strcmp(argv[1], "summary") == 0) return dp_cmd_summary(argc, argv);
    if (argc > 1 && strcmp(argv[1], "export") == 0) return dp_cmd_export(argc, argv);
    if (argc > 1 && strcmp(argv[1], "generate") == 0) {
        main_fix_blas_core(argv);
        dp_blas_set_threads(1); /* a batch of one window: threads only add overhead */
        return dp_cmd_generate(argc, argv);
    }
    /* First of all, before the OpenBLAS re-exec and MPI_Init, which take a
     * while: a stop signal during set-up must not kill the rank (it is agreed
     * at the first step). Only the time before main is left uncovered. */
    dp_signals_install();
    main_fix_blas_core(argv);
    dp_test_hold("setup", 0, dp_signals_pending); /* tests only: core/test_hold.h */
    dp_comm c;
    if (dp_comm_init(&c, &argc, &argv)) {
        fprintf(stderr, "dptrain: error: MPI: initialization failed\n");
        return DP_EXIT_ERROR;
    }
    /* One rank per core: BLAS threads would compete with the other ranks. */
    if (!getenv("OPENBLAS_NUM_THREADS")) dp_blas_set_threads(1);
    dp_flush_denormals(); /* OpenBLAS on one thread runs on this one too */
    if (argc > 1 && (!strcmp(argv[1], "evaluate") || !strcmp(argv[1], "predict"))) {
        int cmd_rc =
            argv[1][0] == 'e' ? dp_cmd_evaluate(&c, argc, argv) : dp_cmd_predict(&c, argc, argv);
        dp_comm_finalize(&c);
        return cmd_rc;
    }
    main_args a = {0};
    dp_error err = {0};
    int rc = DP_EXIT_OK;
    if (main_parse_args(argc, argv, &a, &err)) {
        rc = DP_EXIT_USAGE;
    } else if (a.help || a.version) {
        if (c.rank == 0) fputs(a.help ? main_usage : "dptrain " DPTRAIN_VERSION "\n", stdout);
    } else {
        dp_config cfg = {0};
        dp_config_load_file(&cfg, a.config, a.sets, a.n_set, &err);
        if (!dp_comm_agree(&c, &err)) rc = dp_train_run(&c, &cfg, &a.opts);
        else rc = DP_EXIT_ERROR;
        dp_config_free(&cfg);
    }
    if (err.set && c.rank == 0) dp_error_print(&err);
    dp_comm_finalize(&c);
    return rc;
}
