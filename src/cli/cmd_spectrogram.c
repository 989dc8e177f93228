/* cmd_spectrogram.c — `melodic spectrogram IN -o OUT.h5 [--frontend K] [--trim]`.
 *
 * Decodes one audio file (down-mix, resample to the front end's rate, optional
 * librosa-style trim) and writes its log-mel matrix /logmel (frames × mels, float32)
 * to an HDF5 file atomically, with the front-end and audio settings as attributes.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "cli/cli.h"
#include "cli/util.h"
#include "dsp/frontend.h"
#include "io/h5.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: melodic spectrogram IN -o OUT.h5 [--frontend cnn14|cnn14_16k|mn04] [--trim]\n"
            "\n"
            "Decode IN (WAV, FLAC, Ogg/Vorbis, MP3; channels averaged, resampled with soxr HQ)\n"
            "and write its log-mel spectrogram to OUT.h5 as /logmel (frames x mels, float32).\n"
            "\n"
            "  -o, --output OUT.h5   output file (written atomically)\n"
            "  --frontend K          cnn14 (32 kHz, 64 mels), cnn14_16k (16 kHz, 64 mels,\n"
            "                        default) or mn04 (EfficientAT, 32 kHz, 128 mels)\n"
            "  --trim                trim leading/trailing silence as librosa.effects.trim\n"
            "                        (top_db 60, frame 2048, hop 512) before the front end\n"
            "  -h, --help            this help\n");
}

int mm_cmd_spectrogram(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'}, {"output", required_argument, NULL, 'o'},
        {"frontend", required_argument, NULL, 'F'}, {"trim", no_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    const char *in = NULL, *outp = NULL, *fe_name = "cnn14_16k";
    int trim = 0, usage_rc = 0, rc = 0, c;
    mm_err err = {0};
    mm_frontend_kind kind;
    mm_frontend *fe = NULL;
    mm_audio au = {0};
    mm_audio_opts o;
    mm_h5_out h5;
    float *lm = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); goto done;
        case 'o': outp = optarg; break;
        case 'F': fe_name = optarg; break;
        case 'T': trim = 1; break;
        case ':':
            if (optopt == 'o') usage_rc = mm_cli_usage("spectrogram", "%s needs a file name", argv[optind - 1]);
            else usage_rc = mm_cli_usage("spectrogram", "--frontend needs a value (cnn14, cnn14_16k or mn04)");
            goto done;
        default: usage_rc = mm_cli_usage("spectrogram", "unknown option '%s'", argv[optind - 1]); goto done;
        }
    }
    if (optind < argc) in = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "melodic spectrogram: one input file expected, got also '%s'\n", argv[optind]);
        usage_rc = 2;
        goto done;
    }
    if (!in || !outp) {
        fprintf(stderr, "melodic spectrogram: %s\n",
                !in ? "missing input file (see --help)" : "missing -o OUT.h5 (see --help)");
        usage_rc = 2;
        goto done;
    }
    if (mm_frontend_kind_parse(fe_name, &kind, &err)) {
        fprintf(stderr, "melodic spectrogram: --frontend: %s\n", err.msg);
        usage_rc = 2;
        goto done;
    }
    if ((rc = mm_frontend_create(kind, &fe, &err))) goto done;
    mm_audio_opts_default(&o);
    o.target_sr = mm_frontend_sample_rate(fe);
    o.trim = trim;
    if ((rc = mm_audio_load(in, &o, &au, &err))) goto done;
    size_t nf = mm_frontend_n_frames(fe, au.n);
    int nm = mm_frontend_n_mels(fe);
    if (nf == 0) {
        rc = mm_err_set(&err, MM_EDATA, "%s: %zu samples at %d Hz give no frame", in, au.n, au.sr);
        goto done;
    }
    lm = malloc(nf * (size_t)nm * sizeof *lm);
    if (!lm) {
        rc = mm_err_set(&err, MM_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = mm_frontend_compute(fe, au.x, au.n, lm, &err))) {
        mm_err_prefix(&err, "%s", in);
        goto done;
    }
    if ((rc = mm_h5_create(outp, &h5, &err))) goto done;
    hsize_t dims[2] = {nf, (hsize_t)nm};
    char fdesc[1024], adesc[1024];
    mm_frontend_describe(fe, fdesc, sizeof fdesc);
    mm_audio_opts_describe(&o, adesc, sizeof adesc);
    rc = mm_h5_stamp_format(h5.file, "melodic-spectrogram", 1, &err);
    if (!rc) rc = mm_h5_write_f32(h5.file, "logmel", lm, 2, dims, &err);
    if (!rc) {
        hid_t ds = H5Dopen2(h5.file, "logmel", H5P_DEFAULT);
        if (ds < 0) {
            rc = mm_err_set(&err, MM_EIO, "%s: cannot reopen /logmel", outp);
        } else {
            rc = mm_h5_attr_set_str(ds, "frontend", mm_frontend_kind_name(kind), &err);
            if (!rc) rc = mm_h5_attr_set_i64(ds, "sample_rate", au.sr, &err);
            if (!rc) rc = mm_h5_attr_set_i64(ds, "n_mels", nm, &err);
            if (!rc) rc = mm_h5_attr_set_str(ds, "frontend_settings", fdesc, &err);
            if (!rc) rc = mm_h5_attr_set_str(ds, "audio_settings", adesc, &err);
            if (!rc) rc = mm_h5_attr_set_str(ds, "source", in, &err);
            if (!rc) rc = mm_h5_attr_set_i64(ds, "source_sample_rate", au.orig_sr, &err);
            if (!rc) rc = mm_h5_attr_set_i64(ds, "source_channels", au.orig_channels, &err);
            if (!rc) rc = mm_h5_attr_set_f64(ds, "source_seconds", au.orig_seconds, &err);
            if (!rc) rc = mm_h5_attr_set_i64(ds, "n_samples", (int64_t)au.n, &err);
            H5Dclose(ds);
        }
    }
    if (rc) mm_h5_abort(&h5);
    else rc = mm_h5_commit(&h5, &err);
done:
    if (rc) fprintf(stderr, "melodic spectrogram: %s\n", err.msg);
    free(lm);
    mm_audio_free(&au);
    mm_frontend_free(fe);
    return usage_rc ? usage_rc : rc ? 1 : 0;
}
