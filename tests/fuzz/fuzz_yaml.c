/* libFuzzer: YAML documents (config.yml, plugin manifests) through the
 * loader, with and without ${VAR} interpolation. */
#include <stddef.h>
#include <stdint.h>

#include "yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    for (int flags = 0; flags <= PRISM_YAML_INTERPOLATE; flags += PRISM_YAML_INTERPOLATE) {
        prism_doc *doc = NULL;
        if (prism_yaml_parse((const char *)data, size, "fuzz.yml", flags, &doc, err, sizeof(err)) == 0) {
            const cJSON *root = prism_doc_root(doc);
            (void)prism_doc_line(doc, root);
            prism_doc_free(doc);
        }
    }
    return 0;
}
