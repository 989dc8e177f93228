/* classify.c — the README's example: classify audio files with a bundle.
 *   cc classify.c $(pkg-config --cflags --libs melodic) -o classify
 *   ./classify speech.h5 voice.wav */
#include <melodic.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s BUNDLE.h5 AUDIO...\n", argv[0]);
        return 2;
    }
    char err[512];
    melodic_model *m = NULL;
    if (melodic_model_open(argv[1], NULL, &m, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int k = melodic_model_n_labels(m);
    float *p = malloc(sizeof(float) * (size_t)k);
    int status = 0;
    for (int i = 2; i < argc; i++) {
        int best = melodic_classify_file(m, argv[i], p, err, sizeof err);
        if (best < 0) {
            fprintf(stderr, "%s\n", err);
            status = 1;
            continue;
        }
        printf("%s\t%s\t%.3f\n", argv[i], melodic_model_label(m, best), p[best]);
    }
    free(p);
    melodic_model_close(m);
    return status;
}
