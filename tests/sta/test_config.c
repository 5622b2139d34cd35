/* STA configuration: presets load, the echo parses back to the same design, bad values and
 * designs that cannot hold one tile are rejected with a message naming the key. Also the resource
 * estimate of the presets. */
#include <stdlib.h>
#include <string.h>

#include "nmformer/sta.h"
#include "test.h"

static void expect_error(const char *ini, const char *needle) {
    nmf_sta_config c;
    nmf_sta_config_default(&c);
    nmf_status st = nmf_sta_config_parse(ini, "t.ini", &c);
    CHECK_MSG(st == NMF_ERR_INVALID_ARG, "accepted: %s", ini);
    CHECK_MSG(strstr(nmf_last_error(), needle) != NULL, "message '%s' lacks '%s'", nmf_last_error(),
              needle);
}

int main(void) {
    nmf_sta_config def;
    nmf_sta_config_default(&def);
    CHECK_OK(nmf_sta_config_validate(&def));
    CHECK(nmf_sta_multipliers(&def) == 4096 && def.freq_mhz == 200.0);

    /* presets */
    const char *presets[] = {"configs/hw/small.ini", "configs/hw/mid.ini", "configs/hw/large.ini"};
    int mults[3];
    for (int i = 0; i < 3; i++) {
        nmf_sta_config c;
        nmf_sta_config_default(&c);
        CHECK_OK(nmf_sta_config_load(test_source_path(presets[i]), &c));
        mults[i] = nmf_sta_multipliers(&c);
        nmf_sta_resources r;
        CHECK_OK(nmf_sta_estimate_resources(&c, &r));
        CHECK_MSG(r.fits, "%s does not fit its device (%s)", presets[i], r.over);
        CHECK(r.dsp >= nmf_sta_multipliers(&c));
        CHECK(r.lut_mux > 0 && r.lut_adder > 0);
        /* echo round trip */
        char *ini = nmf_sta_config_to_ini(&c);
        nmf_sta_config back;
        nmf_sta_config_default(&back);
        back.dpus = 1;
        CHECK_OK(nmf_sta_config_parse(ini, "echo", &back));
        CHECK(!memcmp(&back, &c, sizeof c));
        free(ini);
    }
    CHECK(mults[0] < mults[1] && mults[1] == 4096 && mults[2] > mults[1]);

    /* a design too big for its device is flagged */
    {
        nmf_sta_config c = def;
        snprintf(c.device, sizeof c.device, "xc7z020");
        nmf_sta_resources r;
        CHECK_OK(nmf_sta_estimate_resources(&c, &r));
        CHECK(!r.fits && strstr(r.over, "DSP"));
    }

    /* parse errors, each naming the key or line */
    expect_error("[engine]\ndpus = 0\n", "engine.dpus");
    expect_error("[engine]\ndpus = 12.5\n", "engine.dpus");
    expect_error("[engine]\ndpus = many\n", "engine.dpus");
    expect_error("[engine]\ndpus =\n", "engine.dpus");
    expect_error("[engine]\nfreq_mhz = -200\n", "engine.freq_mhz");
    expect_error("[engine]\nfreq_mhz = nan\n", "engine.freq_mhz");
    expect_error("[engine]\nfetch = sometimes\n", "engine.fetch");
    expect_error("[engine]\nmax_m = 64\n", "engine.max_m");
    expect_error("[engine]\nwarp_drive = 1\n", "engine.warp_drive");
    expect_error("[turbo]\nx = 1\n", "[turbo]");
    expect_error("dpus = 4\n", "outside any [section]");
    expect_error("[engine\n", "malformed section");
    expect_error("[engine]\njust words\n", "t.ini:2");
    expect_error("[dram]\ndram_gbps = 0\n", "dram.dram_gbps");
    expect_error("[numeric]\ndata_bits = 12\n", "numeric.data_bits");
    expect_error("[numeric]\ndata_bits = 16\nacc_bits = 32\n", "numeric.acc_bits");
    expect_error("[fpga]\ndevice = xc_imaginary\n", "fpga.device");
    expect_error("[memory]\ndouble_buffer = 2\n", "memory.double_buffer");
    /* designs that cannot hold one tile */
    expect_error("[memory]\nweight_buf_kib = 4\n", "memory.weight_buf_kib");
    expect_error("[memory]\nout_buf_kib = 1\n", "memory.out_buf_kib");
    expect_error("[engine]\nlanes_per_dpu = 256\nmax_m = 32\n[memory]\nact_buf_kib = 16\n"
                 "weight_buf_kib = 65536\n", "memory.act_buf_kib");
    /* comments and whitespace are fine */
    {
        nmf_sta_config c = def;
        CHECK_OK(nmf_sta_config_parse("# c\n  [engine] \n dpus = 128 ; comment\n\n", "t", &c));
        CHECK(c.dpus == 128);
    }
    /* missing file */
    {
        nmf_sta_config c = def;
        CHECK(nmf_sta_config_load("/nonexistent/hw.ini", &c) != NMF_OK);
    }
    /* model-dependent tile checks happen at simulation time, naming the key */
    {
        nmf_model_config v;
        CHECK_OK(nmf_model_shape_config("deit-base", &v));
        nmf_sta_schedule s;
        CHECK_OK(nmf_sta_schedule_synthetic(&s, &v, (nmf_pattern){2, 8}, 400));
        nmf_sta_config c = def;
        c.score_buf_kib = 1; /* one row of 400 scores x 4 bytes does not fit */
        nmf_sta_result r;
        CHECK_STATUS(nmf_sta_simulate(&c, &s, 0, &r), NMF_ERR_INVALID_ARG);
        CHECK(strstr(nmf_last_error(), "memory.score_buf_kib") != NULL);
        c = def;
        c.max_m = 4; /* the muxes cannot serve 2:8 */
        CHECK_STATUS(nmf_sta_simulate(&c, &s, 0, &r), NMF_ERR_INVALID_ARG);
        CHECK(strstr(nmf_last_error(), "engine.max_m") != NULL);
        nmf_sta_schedule_free(&s);
    }
    return test_finish("sta_config");
}
