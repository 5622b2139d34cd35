"""Tests of the Python package (python/nmformer) against the CLI built from the same tree.

Run by ctest (python_nmformer) with NMF_CLI, NMF_SOURCE_DIR, NMF_BUILD_DIR, NMFORMER_LIB and
NMF_ABI_LAYOUT set (CMakeLists.txt); standalone:
    NMF_CLI=build/nmformer NMF_SOURCE_DIR=. NMF_BUILD_DIR=build \
    NMFORMER_LIB=build/libnmformer.so.0 NMF_ABI_LAYOUT=build/python_abi_layout \
    /usr/bin/python3 -m unittest discover -s tests/python
Every comparison is with what the CLI does on the same input: logits bit-identical, files the
same bytes, `info --json` the same dict, error messages the CLI's detail.
"""
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

SRC = os.environ.get("NMF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.abspath(SRC)
sys.path.insert(0, os.path.join(SRC, "python"))  # the package as it is in the checkout

import nmformer  # noqa: E402
from nmformer import _capi  # noqa: E402

CLI = os.environ.get("NMF_CLI")
FIX = os.path.join(SRC, "tests", "fixtures")
TINY = os.path.join(FIX, "vit_tiny.safetensors")            # dim 32, depth 2, 28x28x1
MODEL_FIX = os.path.join(FIX, "model")
SANITIZED = os.environ.get("NMF_SANITIZED") == "1"


def cli(*args, check=True):
    if not CLI:
        raise unittest.SkipTest("NMF_CLI not set (run through ctest)")
    r = subprocess.run([CLI, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"nmformer {' '.join(args)} failed: {r.stderr}")
    return r


def same_json(a, b, where="info"):
    """a == b, except that floats need only agree to 1e-13 relative: cJSON prints 15
    significant digits where they are within its tolerance of the double, Python all 17."""
    if isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                and abs(a - b) <= 1e-13 * max(abs(a), abs(b))):
            raise AssertionError(f"{where}: {a!r} != {b!r}")
    elif isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            raise AssertionError(f"{where}: keys {sorted(set(a) ^ set(b))} differ")
        for k in a:
            same_json(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise AssertionError(f"{where}: {len(a)} != {len(b)} entries")
        for i, (x, y) in enumerate(zip(a, b)):
            same_json(x, y, f"{where}[{i}]")
    elif a != b or type(a) != type(b):
        raise AssertionError(f"{where}: {a!r} != {b!r}")


def read(path):
    with open(path, "rb") as f:
        return f.read()


class TmpDir(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nmf_py_")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def cli_detail(self, *args):
        """The library's detail in the CLI's one-line error, "nmformer cmd: what: status (detail)"."""
        err = cli(*args, check=False).stderr.strip()
        self.assertIn(" (", err)
        return err.split(" (", 1)[1][:-1]

    def cli_family(self, patterns="4:8,2:8,1:8", extra=()):
        out = self.path("cli_family.nmf")
        cli("prune", TINY, out, "--pattern", patterns, *extra)
        return out


class TestAbi(unittest.TestCase):
    """The ctypes mirrors of the C structs have the C compiler's sizes and offsets."""

    def test_struct_layouts(self):
        exe = os.environ.get("NMF_ABI_LAYOUT")
        if not exe:
            self.skipTest("NMF_ABI_LAYOUT not set (run through ctest)")
        layout = json.loads(subprocess.run([exe], capture_output=True, text=True,
                                           check=True).stdout)
        consts = layout.pop("constants")
        self.assertEqual(set(layout), set(_capi.STRUCTS))
        for name, want in layout.items():
            cls = _capi.STRUCTS[name]
            self.assertEqual(ctypes.sizeof(cls), want["size"], name)
            self.assertEqual([f[0] for f in cls._fields_], list(want["fields"]), name)
            for field, (offset, size) in want["fields"].items():
                self.assertEqual(getattr(cls, field).offset, offset, f"{name}.{field} offset")
                self.assertEqual(getattr(cls, field).size, size, f"{name}.{field} size")
        self.assertEqual(consts["NMF_MAX_DIMS"], _capi.MAX_DIMS)
        self.assertEqual(consts["NMF_LAYOUT_COUNT"], _capi.LAYOUT_COUNT)
        self.assertEqual(consts["NMF_DESC_MAX_KINDS"], _capi.DESC_MAX_KINDS)
        for status, name in enumerate(nmformer.errors.STATUS_NAMES):
            self.assertEqual(consts[name], status)
        self.assertEqual(consts["NMF_STATUS_COUNT"], len(nmformer.errors.STATUS_NAMES))
        for head in ("NONE", "LM", "CLASSIFIER"):
            self.assertEqual(consts["NMF_HF_HEAD_" + head], getattr(_capi, "HF_HEAD_" + head))


class TestRun(TmpDir):
    """Model.run against `nmformer run` on the same input."""

    def cli_run(self, model_path, x32, name=None):
        inp, out = self.path("x.npy"), self.path("y.npy")
        np.save(inp, x32)
        cli("run", model_path, "--input", inp, "--output", out,
            *(["--model", name] if name else []))
        return np.load(out)

    def test_family_candidates_match_cli(self):
        fam_path = self.cli_family()
        fam = nmformer.Family.open(fam_path)
        self.assertEqual(fam.candidates, ["dense", "4:8", "2:8", "1:8"])
        rng = np.random.default_rng(1)
        # float64, Fortran order, 40 images: more than one batch of 32
        x64 = np.asfortranarray(rng.standard_normal((40, 1, 28, 28)))
        x32 = np.ascontiguousarray(x64, dtype=np.float32)
        outs = {}
        for name in fam.candidates:
            want = self.cli_run(fam_path, x32, name)
            got = fam[name].run(x64)
            self.assertEqual(got.dtype, np.float32)
            self.assertEqual(got.shape, (40, 10))
            np.testing.assert_array_equal(got, want, err_msg=name)
            outs[name] = got
        # the candidates differ (pruning changed the logits), the dense one is the file's model
        self.assertFalse(np.array_equal(outs["dense"], outs["1:8"]))
        np.testing.assert_array_equal(nmformer.load(TINY).run(x32), outs["dense"])
        self.assertEqual(fam["2:8"].pattern, "2:8")
        self.assertEqual(fam["dense"].pattern, "dense")
        self.assertIs(fam["2:8"]._engine(), fam["2:8"]._engine())  # one engine per candidate
        self.assertLess(fam["2:8"].weight_bytes(), fam["dense"].weight_bytes())

    def test_fixtures_match_reference_logits(self):
        """PyTorch-written fixtures (tests/ref/make_model_fixtures.py): the same logits as
        the CLI bit for bit, and the reference's within 1e-4."""
        for stem in ("vit_2to8", "vit_2to4", "vit_dense_small"):
            path = os.path.join(MODEL_FIX, stem + ".safetensors")
            x = np.load(os.path.join(MODEL_FIX, stem + ".input.npy"))
            ref = np.load(os.path.join(MODEL_FIX, stem + ".logits.npy"))
            got = nmformer.load(path).run(x.astype(np.float64))
            np.testing.assert_array_equal(got, self.cli_run(path, x))
            np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-4, err_msg=stem)

    def test_leading_dims_and_single_image(self):
        m = nmformer.load(TINY)
        x = np.random.default_rng(2).standard_normal((2, 3, 1, 28, 28)).astype(np.float32)
        y = m.run(x)
        self.assertEqual(y.shape, (2, 3, 10))
        np.testing.assert_array_equal(y.reshape(6, 10), m.run(x.reshape(6, 1, 28, 28)))
        # (C, S, S) -> (classes,); a batch of one sums in another order: within 1e-6
        np.testing.assert_allclose(m.run(x[0, 0]), y[0, 0], atol=1e-6, rtol=0)
        self.assertEqual(m.run(np.zeros((0, 1, 28, 28))).shape, (0, 10))
        np.testing.assert_allclose(m.run(x.reshape(6, 1, 28, 28), batch_size=4),
                                   y.reshape(6, 10), atol=1e-6, rtol=0)
        with self.assertRaises(nmformer.InvalidArgumentError):
            m.run(x, batch_size=0)
        # integer input is cast like any real dtype
        xi = np.arange(784, dtype=np.int16).reshape(1, 1, 28, 28) % 7 - 3
        np.testing.assert_array_equal(m.run(xi), m.run(xi.astype(np.float32)))

    def test_python_threads(self):
        """Models run from several Python threads (the GIL is released in the library) give
        what they give alone; one model shared by threads too (its lock)."""
        import threading
        fam = nmformer.Family.open(self.cli_family("2:8,1:8"))
        x = np.random.default_rng(4).standard_normal((8, 1, 28, 28))
        alone = {name: fam[name].run(x) for name in fam.candidates}
        models = {name: fam[name] for name in fam.candidates}
        got, errors = {}, []

        def work(key, name):
            try:
                for _ in range(5):
                    got[key] = models[name].run(x)
            except Exception as e:  # reported below
                errors.append(e)
        jobs = [threading.Thread(target=work, args=((name, k), name))
                for name in fam.candidates for k in range(2)]
        for j in jobs:
            j.start()
        for j in jobs:
            j.join()
        self.assertEqual(errors, [])
        for (name, _), y in got.items():
            np.testing.assert_array_equal(y, alone[name], err_msg=name)
        self.assertEqual(len(got), 6)

    def test_family_freed_without_gc(self):
        """No reference cycle: dropping the family and its models frees the C memory at once,
        not at the next cyclic collection."""
        import gc
        import weakref
        fam = nmformer.Family.open(self.cli_family("2:8"))
        model = fam["2:8"]
        model.run(np.zeros((1, 1, 28, 28)))
        ref = weakref.ref(fam)
        gc.disable()
        try:
            del fam
            self.assertIsNotNone(ref())  # the model keeps its family alive
            del model
            self.assertIsNone(ref())
        finally:
            gc.enable()

    def test_threads_setting(self):
        n = nmformer.get_threads()
        self.addCleanup(nmformer.set_threads, n)
        nmformer.set_threads(1)
        self.assertEqual(nmformer.get_threads(), 1)
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.set_threads(0)
        self.assertIn(nmformer.isa(), ("scalar", "avx2", "avx512"))
        self.assertEqual(nmformer.library_version(), nmformer.__version__)


class TestPruneConvert(TmpDir):
    """prune / convert written from Python are the bytes the CLI writes."""

    def test_prune_same_bytes_as_cli(self):
        for dtype, extra in ((None, ()), ("bf16", ("--dtype", "bf16"))):
            want = self.cli_family("4:8,2:8", extra)
            out = self.path("py.nmf")
            fam = nmformer.prune(TINY, ["4:8", "2:8"], out=out, dtype=dtype)
            self.assertEqual(read(out), read(want), dtype)
            self.assertEqual(fam.candidates, ["dense", "4:8", "2:8"])
            self.assertEqual(fam.path, out)
        # a comma list and no dense
        cli("prune", TINY, self.path("c2.nmf"), "--pattern", "2:4,1:8", "--no-dense")
        nmformer.prune(TINY, "2:4,1:8", out=self.path("p2.nmf"), dense=False)
        self.assertEqual(read(self.path("p2.nmf")), read(self.path("c2.nmf")))

    def test_prune_calibrated_same_bytes_as_cli(self):
        """method= and calibration: the CLI's family, byte for byte, and what it cost."""
        x = np.random.default_rng(3).standard_normal((12, 1, 28, 28)).astype(np.float32)
        x[:, :, :, 5] *= 20.0  # an outlier column, so that the methods differ from magnitude
        calib = self.path("calib.npy")
        np.save(calib, x)
        for method, extra in (("wanda", ()), ("sparsegpt", ("--damp", "0.05"))):
            want = self.path(f"cli_{method}.nmf")
            cli("prune", TINY, want, "--pattern", "2:4,1:8", "--method", method, "--calib", calib,
                "--calib-samples", "10", *extra)
            out = self.path(f"py_{method}.nmf")
            fam = nmformer.prune(TINY, "2:4,1:8", out=out, method=method, calib=calib,
                                 calib_samples=10, damp=0.05 if extra else None)
            self.assertEqual(read(out), read(want), method)
            self.assertEqual(fam.calibration["samples"], 10)
            self.assertEqual(fam.calibration["forwards"], 1 if method == "wanda" else 2 * 2)
        mag = nmformer.prune(TINY, "2:4", out=self.path("mag.nmf"))
        self.assertIsNone(mag.calibration)
        self.assertNotEqual(read(self.path("mag.nmf")), read(self.path("py_wanda.nmf")))
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.prune(TINY, "2:4", method="magnitude", calib=calib)
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.prune(TINY, "2:4", method="wanda", calib=calib, damp=0.1)
        with self.assertRaises(nmformer.Error):
            nmformer.prune(TINY, "2:4", method="obs")
        x[3, 0, 2, 2] = np.nan
        np.save(calib, x)
        with self.assertRaises(nmformer.Error) as e:
            nmformer.prune(TINY, "2:4", method="wanda", calib=calib)
        self.assertIn("image 3", str(e.exception))

    def test_prune_add_same_bytes_as_cli(self):
        a, b = self.path("a.nmf"), self.path("b.nmf")
        cli("prune", TINY, a, "--pattern", "4:8", "--dtype", "f16")
        shutil.copy(a, b)
        cli("prune", TINY, a, "--pattern", "2:8,1:8", "--add")
        fam = nmformer.prune(TINY, ["2:8", "1:8"], out=b, add=True)
        self.assertEqual(read(b), read(a))
        self.assertEqual(fam.dtype, "f16")
        with self.assertRaises(nmformer.InvalidArgumentError) as e:
            nmformer.prune(TINY, ["2:8"], out=b, add=True)
        self.assertIn("already holds a model named '2:8'", str(e.exception))

    def test_prune_from_state_dict_and_model(self):
        """A state dict (as from torch, float64 here) prunes to the same tensors as the file."""
        want = nmformer.Family.open(self.cli_family("2:8"))
        src = nmformer.load(TINY)
        sd = {k: v.astype(np.float64) for k, v in src.to_state_dict().items()}
        for source in (sd, src):
            fam = nmformer.prune(source, ["2:8"], config=src.config)
            self.assertEqual(fam.candidates, ["dense", "2:8"])
            for name in fam.candidates:
                got, exp = fam[name].to_state_dict(), want[name].to_state_dict()
                self.assertEqual(list(got), list(exp))
                for k in exp:
                    np.testing.assert_array_equal(got[k], exp[k], err_msg=f"{name} {k}")
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.prune(sd, ["2:8"])  # a state dict without a config
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.prune(TINY, ["2:8", "2:8"])
        with self.assertRaises(nmformer.InvalidArgumentError) as e:
            nmformer.prune(TINY, ["4:4"])
        self.assertIn("4:4", str(e.exception))

    def test_convert_same_bytes_as_cli(self):
        fam = self.cli_family("2:8,1:8")
        sparse_st = self.path("sparse.safetensors")
        cli("convert", fam, sparse_st, "--model", "2:8")
        cases = [  # (source, out extension, options as CLI flags and as keywords)
            (fam, ".nmf", (), {}),
            (fam, ".nmf", ("--model", "1:8", "--dtype", "bf16"), dict(model="1:8", dtype="bf16")),
            (fam, ".safetensors", ("--model", "2:8"), dict(model="2:8")),
            (TINY, ".nmf", (), {}),
            (sparse_st, ".nmf", ("--model", "2:8"), dict(model="2:8")),
            (TINY, ".safetensors", ("--dtype", "f16"), dict(dtype="f16")),
        ]
        for i, (src, ext, flags, kw) in enumerate(cases):
            want, got = self.path(f"c{i}{ext}"), self.path(f"p{i}{ext}")
            cli("convert", src, want, *flags)
            nmformer.convert(src, got, **kw)
            self.assertEqual(read(got), read(want), f"case {i}: {src} {flags}")
        packed = nmformer.Family.open(self.path("p4.nmf"))["2:8"]
        self.assertEqual(packed.pattern, "2:8")
        with self.assertRaises(nmformer.InvalidArgumentError) as e:  # dense is not 2:8 sparse
            nmformer.convert(TINY, self.path("x.nmf"), model="2:8")
        self.assertIn(cli("convert", TINY, self.path("y.nmf"), "--model", "2:8",
                          check=False).stderr.split(" (", 1)[1].rstrip(")\n"), str(e.exception))

    def test_source_kind_from_contents(self):
        """A family under another name is still a family (the magic bytes decide, as in the CLI);
        a file that is no model is refused with the library's message."""
        fam = self.cli_family("2:8")
        renamed = self.path("family.bin")
        shutil.copyfile(fam, renamed)
        want, got = self.path("want.safetensors"), self.path("got.safetensors")
        cli("convert", renamed, want, "--model", "2:8")
        nmformer.convert(renamed, got, model="2:8")
        self.assertEqual(read(got), read(want))
        junk = self.path("junk.nmf")
        with open(junk, "w") as f:
            f.write("not a model")
        with self.assertRaises(nmformer.Error):
            nmformer.convert(junk, self.path("z.safetensors"))

    def test_info_same_as_cli(self):
        fam = self.cli_family("4:8,2:8", ("--dtype", "bf16"))
        pair = self.path("pair.nmf")  # payloads shared by two candidates
        cli("prune", TINY, pair, "--pattern", "2:8")
        for path in (fam, pair, TINY,
                     os.path.join(MODEL_FIX, "vit_dense_small.noconfig.safetensors")):
            want = json.loads(cli("info", path, "--json").stdout)
            same_json(nmformer.info(path), want, path)
        got = nmformer.Family.open(fam).info()
        self.assertGreater(got["bytes_saved_by_sharing"], 0)
        self.assertEqual([m["name"] for m in got["models"]], ["dense", "4:8", "2:8"])
        self.assertLess(got["models"][2]["ratio"], got["models"][1]["ratio"])

    def test_family_add_save_reopen(self):
        src = nmformer.load(TINY)
        fam = nmformer.Family.new(src.config)
        fam.add("dense", src)
        pruned = src.prune("2:8")
        fam.add("2:8", pruned)
        view = fam["dense"]
        fam.add("1:8", src.prune("1:8"))  # moves the candidate table: the view must follow
        self.assertEqual(view.to_state_dict().keys(), src.to_state_dict().keys())
        out = self.path("f.nmf")
        fam.save(out)
        want = self.path("w.nmf")
        cli("prune", TINY, want, "--pattern", "2:8,1:8")
        # same tensors as the CLI's family (the metadata of the source differs: none here)
        back = nmformer.Family.open(out)
        ref = nmformer.Family.open(want)
        for name in ref.candidates:
            for k, v in ref[name].to_state_dict().items():
                np.testing.assert_array_equal(back[name].to_state_dict()[k], v)
        self.assertEqual(back["2:8"].pattern, "2:8")
        with self.assertRaises(nmformer.InvalidArgumentError):
            fam.add("2:8", pruned)  # name taken
        with self.assertRaises(nmformer.InvalidArgumentError):
            fam.add("other", nmformer.load(os.path.join(MODEL_FIX, "vit_2to8.safetensors")))
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.Family.new(src.config).info()  # never saved


HF = os.path.join(FIX, "hf")
HF_FIXTURES = [f["name"] for f in json.load(open(os.path.join(HF, "manifest.json")))["fixtures"]]


def hf_file(name, file):
    """A fixture's .npy (tests/fixtures/hf/NAME/FILE), or None where the fixture has none."""
    path = os.path.join(HF, name, file)
    return np.load(path) if os.path.exists(path) else None


def rel_err(got, ref):
    """max |got - ref| / max |ref|: the measure tests/model/test_lm_fixtures.c bounds by 1e-4."""
    return float(np.abs(got.astype(np.float64) - ref).max() / np.abs(ref).max())


class TestTokenModels(TmpDir):
    """Hugging Face folders (tests/fixtures/hf): load, prune, info and state dicts work on the
    token families as on the ViT; run and generate give the PyTorch references and the CLI's
    results."""

    def test_hf_folder(self):
        folder = os.path.join(HF, "llama_gqa6x2")
        want = self.path("cli.nmf")
        cli("prune", folder, want, "--pattern", "2:8")
        got = self.path("py.nmf")
        fam = nmformer.prune(folder, ["2:8"], out=got)
        self.assertEqual(read(got), read(want))
        same_json(nmformer.info(got), json.loads(cli("info", got, "--json").stdout))
        c = fam.config
        self.assertEqual((c.arch, c.hf_prefix, c.hf["num_key_value_heads"]), ("llama", "model.", 2))
        self.assertTrue(c.is_token)
        self.assertEqual(nmformer.Config.from_json(c.to_json()), c)
        self.assertEqual(nmformer.Config.from_dict(c.to_dict()), c)
        m = nmformer.load(folder)
        sd = m.to_state_dict()
        self.assertIn("model.layers.0.self_attn.q_proj.weight", sd)
        back = nmformer.from_state_dict(fam["2:8"].to_state_dict(), c, pattern="2:8")
        for k, v in back.to_state_dict().items():
            np.testing.assert_array_equal(v, fam["2:8"].to_state_dict()[k])
        ids = hf_file("llama_gqa6x2", "input_ids.npy")
        np.testing.assert_array_equal(back.run(ids), fam["2:8"].run(ids))

    # ---- helpers: the CLI on the same inputs ----------------------------------------------
    def cli_run(self, model, ids, types=None, mask=None, name=None, batch=None, f32=False):
        args = ["run", model, "--input", self.save("ids.npy", ids), "--output", self.path("y.npy")]
        args += ["--precision", "f32"] if f32 else []
        if types is not None:
            args += ["--token-types", self.save("types.npy", types)]
        if mask is not None:
            args += ["--attention-mask", self.save("mask.npy", mask)]
        args += ["--model", name] if name else []
        args += ["--batch", str(batch)] if batch else []
        cli(*args)
        return np.load(self.path("y.npy"))

    def cli_generate(self, model, ids, tokens, *extra, name=None):
        cli("generate", model, "--input", self.save("prompt.npy", ids), "--tokens", str(tokens),
            "--output", self.path("seq.npy"), *(["--model", name] if name else []), *extra)
        return np.load(self.path("seq.npy"))

    def save(self, name, arr):
        np.save(self.path(name), arr)
        return self.path(name)

    # ---- run and generate -------------------------------------------------------------------
    def test_fixtures_match_reference_and_cli(self):
        """Every fixture: the PyTorch reference's output within 1e-4 (relative to its largest
        value, as the C tests), `nmformer run --precision f32`'s bit for bit (Python's models
        hold f32 weights), plain `run`'s (BF16/F16 weights kept 16-bit: other sums) within 1e-5,
        the reference's greedy generation and `nmformer generate`'s exactly."""
        for name in HF_FIXTURES:
            folder = os.path.join(HF, name)
            ids = hf_file(name, "input_ids.npy")
            types, mask = hf_file(name, "token_type_ids.npy"), hf_file(name, "attention_mask.npy")
            ref = hf_file(name, "logits.npy")
            ref = hf_file(name, "last_hidden_state.npy") if ref is None else ref
            m = nmformer.load(folder)
            got = m.run(ids.astype(np.int32), token_type_ids=types, attention_mask=mask)
            self.assertEqual((got.dtype, got.shape), (np.float32, ref.shape), name)
            self.assertLessEqual(rel_err(got, ref), 1e-4, name)
            np.testing.assert_array_equal(got, self.cli_run(folder, ids, types, mask, f32=True),
                                          err_msg=name)
            self.assertLessEqual(rel_err(self.cli_run(folder, ids, types, mask), got), 1e-5, name)
            pool = hf_file(name, "pooler_output.npy")
            if pool is not None:
                hidden, pooled = m.run(ids, return_pooler=True)
                np.testing.assert_array_equal(hidden, got)
                self.assertLessEqual(rel_err(pooled, pool), 1e-4, name)
            want = hf_file(name, "generate.npy")
            if want is not None:
                G = want.shape[1] - ids.shape[1]
                seq = m.generate(ids, G)
                self.assertEqual(seq.dtype, np.int64)
                np.testing.assert_array_equal(seq, want, err_msg=name)
                np.testing.assert_array_equal(seq, self.cli_generate(folder, ids, G),
                                              err_msg=name)

    def test_bert_padding_and_batches(self):
        """BERT's mask and token types travel with their sequences when the batch is split
        (batch_size 1 and 2 of 3 sequences: `nmformer run --batch`), a bool mask is a 0/1 mask,
        and the mask matters."""
        name = "bert_cls_pad"
        folder = os.path.join(HF, name)
        ids, types = hf_file(name, "input_ids.npy"), hf_file(name, "token_type_ids.npy")
        mask = hf_file(name, "attention_mask.npy")
        m = nmformer.load(folder)
        whole = m.run(ids, token_type_ids=types, attention_mask=mask)
        for b in (1, 2):
            got = m.run(ids, b, token_type_ids=types, attention_mask=mask.astype(bool))
            np.testing.assert_array_equal(got, self.cli_run(folder, ids, types, mask, batch=b))
            self.assertLessEqual(rel_err(got, whole), 1e-5)
        self.assertFalse(np.array_equal(m.run(ids, token_type_ids=types), whole))  # padding seen
        # one sequence (T): as (1, T), the CLI's shape too
        one = m.run(list(ids[0]), token_type_ids=types[0], attention_mask=mask[0])
        self.assertEqual(one.shape, (1, 3))
        np.testing.assert_array_equal(one, self.cli_run(folder, ids[0], types[0], mask[0]))

    def test_sampling_matches_cli(self):
        folder = os.path.join(HF, "gpt2_lm")
        ids = hf_file("gpt2_lm", "input_ids.npy")
        m = nmformer.load(folder)
        a = m.generate(ids, 9, temperature=0.8, top_k=5, seed=3)
        np.testing.assert_array_equal(a, self.cli_generate(folder, ids, 9, "--temperature", "0.8",
                                                           "--top-k", "5", "--seed", "3"))
        np.testing.assert_array_equal(a[:, :7], ids)
        np.testing.assert_array_equal(m.generate(ids, 9, temperature=0.8, top_k=5, seed=3), a)
        # a hot, wide draw: some seed among a few leaves the greedy path
        greedy = m.generate(ids, 9)
        self.assertTrue(any(not np.array_equal(m.generate(ids, 9, temperature=5.0, seed=s), greedy)
                            for s in range(4)))
        seq, stats = m.generate(ids, 5, max_tokens=20, stats=True)
        np.testing.assert_array_equal(seq, hf_file("gpt2_lm", "generate.npy"))
        self.assertEqual(stats["decode_tokens"], 2 * 4)
        self.assertGreaterEqual(stats["prefill_seconds"], 0.0)
        np.testing.assert_array_equal(m.generate(ids, 0), ids)

    def test_pruned_family_runs(self):
        """prune(dense folder) from Python: the candidates run on the N:M kernels, equal
        `nmformer run --model` on the same family file, and reproduce the PyTorch outputs of
        the fixture pruned by the same rule (gpt2_lm_2to4, llama_gqa6x2_2to8)."""
        for dense, nm, pat in (("gpt2_lm", "gpt2_lm_2to4", "2:4"),
                               ("llama_gqa6x2", "llama_gqa6x2_2to8", "2:8"),
                               ("bert_cls_pad", "bert_cls_pad_2to8", "2:8")):
            path = self.path(dense + ".nmf")
            fam = nmformer.prune(os.path.join(HF, dense), [pat], out=path)
            model = fam[pat]
            self.assertEqual(model.pattern, pat)
            self.assertLess(model.weight_bytes(), fam["dense"].weight_bytes())
            ids = hf_file(nm, "input_ids.npy")
            types, mask = hf_file(nm, "token_type_ids.npy"), hf_file(nm, "attention_mask.npy")
            got = model.run(ids, token_type_ids=types, attention_mask=mask)
            self.assertLessEqual(rel_err(got, hf_file(nm, "logits.npy")), 1e-4, nm)
            np.testing.assert_array_equal(got, self.cli_run(path, ids, types, mask, name=pat))
            self.assertGreater(np.abs(got - fam["dense"].run(ids, token_type_ids=types,
                                                             attention_mask=mask)).max(), 1e-4)
            if model.kind != "bert":
                want = hf_file(nm, "generate.npy")
                G = want.shape[1] - ids.shape[1]
                seq = model.generate(ids, G)
                np.testing.assert_array_equal(seq, self.cli_generate(path, ids, G, name=pat))
                np.testing.assert_array_equal(seq, want)
        # Model.prune, no file: the same candidate
        one = nmformer.load(os.path.join(HF, "llama_gqa6x2")).prune("2:8")
        ids = hf_file("llama_gqa6x2_2to8", "input_ids.npy")
        in_file = nmformer.Family.open(self.path("llama_gqa6x2.nmf"))["2:8"]
        np.testing.assert_array_equal(one.run(ids), in_file.run(ids))

    def test_python_threads(self):
        """Two token models from several Python threads give what they give alone."""
        import threading
        models = {n: nmformer.load(os.path.join(HF, n)) for n in ("gpt2_lm", "llama_gqa6x2")}
        ids = {n: hf_file(n, "input_ids.npy") for n in models}
        alone = {n: (models[n].run(ids[n]), models[n].generate(ids[n], 4)) for n in models}
        errors, got = [], []

        def work(n):
            try:
                for _ in range(3):
                    got.append((n, models[n].run(ids[n]), models[n].generate(ids[n], 4)))
            except Exception as e:  # reported below
                errors.append(e)
        jobs = [threading.Thread(target=work, args=(n,)) for n in models for _ in range(2)]
        for j in jobs:
            j.start()
        for j in jobs:
            j.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(got), 12)
        for n, y, seq in got:
            np.testing.assert_array_equal(y, alone[n][0])
            np.testing.assert_array_equal(seq, alone[n][1])

    # ---- bad inputs -------------------------------------------------------------------------
    def test_bad_inputs(self):
        gpt2 = nmformer.load(os.path.join(HF, "gpt2_lm"))
        ids = hf_file("gpt2_lm", "input_ids.npy")
        for bad in (ids.astype(np.float64), ids.astype(np.float32), ids.astype(bool),
                    [[1.0, 2.0]], np.array(["a", "b"])):
            with self.assertRaises(nmformer.InvalidArgumentError) as e:
                gpt2.run(bad)
            self.assertIn("not an integer type", str(e.exception))
        for bad in (ids[None], np.int64(3), np.zeros((0, 4), np.int64), np.zeros((2, 0), np.int64)):
            with self.assertRaises(nmformer.ShapeError) as e:
                gpt2.run(bad)
            self.assertIn("expected [B, T]", str(e.exception))
        # values: the library's message, as the CLI prints it
        bad = ids.copy()
        bad[1, 4] = 67  # vocab 67
        with self.assertRaises(nmformer.InvalidArgumentError) as e:
            gpt2.run(bad)
        self.assertIn("sequence 1, position 4", str(e.exception))
        self.assertEqual(str(e.exception), self.cli_detail(
            "run", os.path.join(HF, "gpt2_lm"), "--input", self.save("bad.npy", bad), "--output",
            self.path("o.npy")))
        with self.assertRaises(nmformer.InvalidArgumentError) as e:  # in the second forward
            gpt2.run(bad, batch_size=1)
        self.assertIn("sequences 1..1", str(e.exception))
        with self.assertRaises(nmformer.InvalidArgumentError):
            gpt2.run(np.array([[-1, 2]]))
        with self.assertRaises(nmformer.InvalidArgumentError):
            gpt2.run(np.array([[2 ** 63]], np.uint64))
        with self.assertRaises(nmformer.InvalidArgumentError) as e:  # T > max_position (32)
            gpt2.run(np.zeros((1, 33), np.int64))
        self.assertIn("max_position_embeddings", str(e.exception))
        with self.assertRaises(nmformer.InvalidArgumentError) as e:
            gpt2.run(ids, attention_mask=np.ones_like(ids))
        self.assertIn("only BERT", str(e.exception))
        with self.assertRaises(nmformer.InvalidArgumentError):
            gpt2.run(ids, return_pooler=True)
        with self.assertRaises(nmformer.InvalidArgumentError):
            gpt2.run(ids, batch_size=0)
        bert = nmformer.load(os.path.join(HF, "bert_cls_pad"))
        bids = hf_file("bert_cls_pad", "input_ids.npy")
        with self.assertRaises(nmformer.ShapeError) as e:
            bert.run(bids, attention_mask=np.ones((3, 8), np.int64))
        self.assertIn("token ids' shape [3, 9]", str(e.exception))
        with self.assertRaises(nmformer.InvalidArgumentError) as e:
            bert.run(bids, attention_mask=np.full((3, 9), 2))
        self.assertIn("not 0 or 1", str(e.exception))
        with self.assertRaises(nmformer.InvalidArgumentError):
            bert.run(bids, token_type_ids=np.full((3, 9), 2))  # type_vocab 2
        with self.assertRaises(nmformer.InvalidArgumentError):
            bert.run(bids, token_type_ids=np.zeros((3, 9)))  # floats
        # generate: only causal LMs, sane options
        with self.assertRaises(nmformer.UnsupportedError) as e:
            bert.generate(bids, 2)
        self.assertIn("LM head", str(e.exception))
        with self.assertRaises(nmformer.UnsupportedError):
            nmformer.load(TINY).generate(ids, 2)
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.load(TINY).run(np.zeros((1, 1, 28, 28)), attention_mask=ids)
        for kwargs in ({"tokens": -1}, {"tokens": 2.5}, {"tokens": 2, "top_k": 5},
                       {"tokens": 2, "temperature": -1}, {"tokens": 2, "temperature": float("nan")},
                       {"tokens": 2, "seed": -1}, {"tokens": 2, "max_tokens": 0},
                       {"tokens": 30}):  # 7 + 30 > max_position_embeddings 32
            with self.assertRaises(nmformer.InvalidArgumentError, msg=str(kwargs)):
                gpt2.generate(ids, **kwargs)
        with self.assertRaises(nmformer.InvalidArgumentError) as e:
            gpt2.generate(ids, 5, max_tokens=10)
        self.assertEqual(str(e.exception), self.cli_detail(
            "generate", os.path.join(HF, "gpt2_lm"), "--input", self.save("p.npy", ids),
            "--tokens", "5", "--max-tokens", "10", "--output", self.path("s.npy")))
        with self.assertRaises(nmformer.InvalidArgumentError):
            gpt2.generate(ids.astype(np.float32), 2)


class TestStateDict(TmpDir):
    def test_round_trip(self):
        fam = nmformer.Family.open(self.cli_family("2:8"))
        x = np.random.default_rng(3).standard_normal((4, 1, 28, 28))
        for name in fam.candidates:
            sd = fam[name].to_state_dict()
            self.assertEqual(sd["blocks.0.attn.qkv.weight"].shape, (96, 32))
            self.assertEqual(sd["patch_embed.proj.weight"].shape, (32, 1, 7, 7))
            back = nmformer.from_state_dict(sd, fam.config,
                                            pattern=None if name == "dense" else name)
            self.assertEqual(back.pattern, name)
            sd2 = back.to_state_dict()
            self.assertEqual(list(sd2), list(sd))
            for k in sd:
                np.testing.assert_array_equal(sd2[k], sd[k])
            np.testing.assert_array_equal(back.run(x), fam[name].run(x))
        w = fam["2:8"].to_state_dict()["blocks.1.mlp.fc2.weight"]
        self.assertTrue(((w.reshape(w.shape[0], -1, 8) != 0).sum(-1) <= 2).all())
        # save as safetensors and load back
        p = self.path("m.safetensors")
        fam["2:8"].save(p)
        loaded = nmformer.load(p)
        self.assertEqual(loaded.pattern, "dense")  # safetensors holds it dense, zeros kept
        np.testing.assert_array_equal(loaded.pack("2:8").run(x), fam["2:8"].run(x))
        np.testing.assert_allclose(loaded.run(x), fam["2:8"].run(x), atol=1e-5, rtol=0)

    def test_bad_state_dicts_raise_the_library_message(self):
        m = nmformer.load(TINY)
        sd = m.to_state_dict()
        bad = dict(sd, pos_embed=np.zeros((1, 5, 32)))
        with self.assertRaises(nmformer.ShapeError) as e:
            nmformer.from_state_dict(bad, m.config)
        self.assertIn("pos_embed", str(e.exception))
        missing = dict(sd)
        del missing["head.bias"]
        with self.assertRaises(nmformer.Error) as e:
            nmformer.from_state_dict(missing, m.config)
        self.assertIn("head.bias", str(e.exception))
        with self.assertRaises(nmformer.Error) as e:
            nmformer.from_state_dict(dict(sd, extra=np.ones(3)), m.config)
        self.assertIn("extra", str(e.exception))
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.from_state_dict(dict(sd, cls_token=np.ones((1, 1, 32), complex)), m.config)
        with self.assertRaises(nmformer.InvalidArgumentError) as e:  # dense is not 2:8 sparse
            nmformer.from_state_dict(sd, m.config, pattern="2:8")
        self.assertIn("2:8", str(e.exception))

    def test_config(self):
        c = nmformer.Config.default()
        self.assertEqual((c.dim, c.depth, c.img_size), (64, 4, 28))
        self.assertEqual(nmformer.Config.shape("deit-small").dim, 384)
        self.assertEqual(nmformer.Config.from_json(c.to_json()), c)
        self.assertEqual(nmformer.Config.from_dict({"dim": 32, "heads": 2}).dim, 32)
        with self.assertRaises(nmformer.NotFoundError) as e:
            nmformer.Config.shape("nope")
        self.assertIn("deit-small", str(e.exception))  # the detail lists the known shapes
        with self.assertRaises(nmformer.InvalidArgumentError):
            nmformer.Config.default(heads=5).validate()  # 64 % 5 != 0


class TestErrors(TmpDir):
    def test_missing_file(self):
        path = self.path("missing.nmf")
        with self.assertRaises(nmformer.FileError) as e:
            nmformer.Family.open(path)
        self.assertIsInstance(e.exception, OSError)
        self.assertEqual(e.exception.status_name, "NMF_ERR_IO")
        self.assertEqual(str(e.exception), self.cli_detail("info", path))
        with self.assertRaises(nmformer.FileError):
            nmformer.load(self.path("missing.safetensors"))

    def test_corrupt_file(self):
        good = self.cli_family("2:8")
        data = bytearray(read(good))
        data[len(data) - 10] ^= 0x10  # a payload byte: its CRC no longer matches
        bad = self.path("bad.nmf")
        with open(bad, "wb") as f:
            f.write(data)
        with self.assertRaises(nmformer.Error) as e:
            nmformer.Family.open(bad)
        self.assertIsInstance(e.exception, (nmformer.ChecksumError, nmformer.FormatError))
        self.assertEqual(str(e.exception), self.cli_detail("info", bad))
        with open(bad, "wb") as f:
            f.write(read(good)[:100])  # truncated
        with self.assertRaises(nmformer.FormatError) as e:
            nmformer.load(bad, "dense")
        self.assertEqual(str(e.exception), self.cli_detail("info", bad))

    def test_wrong_input(self):
        fam = nmformer.Family.open(self.cli_family("2:8"))
        with self.assertRaises(nmformer.ShapeError) as e:
            fam["dense"].run(np.zeros((2, 3, 28, 28)))
        self.assertIn("[2, 3, 28, 28]", str(e.exception))
        x = np.zeros((2, 1, 28, 28))
        x[1, 0, 3, 4] = np.nan
        with self.assertRaises(nmformer.NumericError) as e:
            fam["2:8"].run(x)
        self.assertIn("non-finite", str(e.exception).lower().replace("nan", "non-finite"))
        with self.assertRaises(nmformer.NotFoundError) as e:
            fam["3:8"]
        self.assertIsInstance(e.exception, KeyError)
        self.assertIn("dense, 2:8", str(e.exception))
        with self.assertRaises(nmformer.NotFoundError) as e:
            nmformer.load(fam.path)  # two candidates: which?
        self.assertEqual(str(e.exception), self.cli_detail("run", fam.path, "--input",
                                                           os.path.join(MODEL_FIX, "vit_2to8.input.npy"),
                                                           "--output", self.path("o.npy")))
        with self.assertRaises(nmformer.InvalidArgumentError) as e:  # contradicts the file
            nmformer.load(TINY, config={"dim": 16})
        self.assertIn("dim", str(e.exception))
        # a file without a config: the caller's completes it, as the CLI's flags do
        noconf = os.path.join(MODEL_FIX, "vit_dense_small.noconfig.safetensors")
        with self.assertRaises(nmformer.NotFoundError):
            nmformer.load(noconf)
        cfg = nmformer.load(os.path.join(MODEL_FIX, "vit_dense_small.safetensors")).config
        flags = ["--img-size", str(cfg.img_size), "--patch", str(cfg.patch), "--in-chans",
                 str(cfg.in_chans), "--dim", str(cfg.dim), "--depth", str(cfg.depth),
                 "--heads", str(cfg.heads), "--mlp-ratio", str(cfg.mlp_ratio),
                 "--classes", str(cfg.num_classes)]
        x = np.load(os.path.join(MODEL_FIX, "vit_dense_small.input.npy"))
        np.save(self.path("in.npy"), x)
        cli("run", noconf, "--input", self.path("in.npy"), "--output", self.path("out.npy"), *flags)
        fields = {k: v for k, v in cfg.to_dict().items() if k not in ("arch", "mean", "std")}
        np.testing.assert_array_equal(nmformer.load(noconf, config=fields).run(x),
                                      np.load(self.path("out.npy")))

    def test_library_not_found(self):
        code = ("import nmformer\n"
                "try:\n    nmformer.library_version()\n"
                "except nmformer.LibraryError as e:\n    print(e)\n")
        env = dict(os.environ, NMFORMER_LIB=self.path("nope/libnmformer.so.0"),
                   PYTHONPATH=os.path.join(SRC, "python"))
        env.pop("LD_PRELOAD", None)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True).stdout
        self.assertIn("cannot find the shared library", out)
        self.assertIn(self.path("nope/libnmformer.so.0"), out)


def _torch():
    if SANITIZED:
        raise unittest.SkipTest("torch is not loaded under the ASan runtime")
    try:
        import torch
    except ImportError:
        raise unittest.SkipTest("torch is not installed (Debian: python3-torch)")
    sys.path.insert(0, os.path.join(SRC, "tests", "ref"))
    import vit_ref
    return torch, vit_ref


class TestTorch(TmpDir):
    """A PyTorch model (tests/ref/vit_ref.py, timm names) in and out."""

    def test_torch_model_in_and_out(self):
        torch, vit_ref = _torch()
        torch.manual_seed(0)
        cfg = nmformer.Config.default(dim=32, depth=2, heads=2)
        net = vit_ref.VisionTransformer(**cfg.to_dict()).eval()
        with torch.no_grad():  # non-trivial class token and position embedding
            net.cls_token.normal_(0, 0.02)
            net.pos_embed.normal_(0, 0.02)
        x = torch.randn(5, 1, 28, 28)
        with torch.no_grad():
            want = net(x).numpy()
        model = nmformer.from_state_dict(net.state_dict(), cfg)
        np.testing.assert_allclose(model.run(x), want, atol=1e-4, rtol=1e-4)
        # prune from the torch state dict, back into torch: the same logits
        fam = nmformer.prune(net.state_dict(), ["2:8"], config=cfg, out=self.path("f.nmf"))
        net.load_state_dict({k: torch.from_numpy(v)
                             for k, v in fam["2:8"].to_state_dict().items()})
        with torch.no_grad():
            pruned = net(x).numpy()
        np.testing.assert_allclose(fam["2:8"].run(x), pruned, atol=1e-4, rtol=1e-4)
        self.assertGreater(np.abs(pruned - want).max(), 1e-3)  # pruning did change it
        # bf16 tensors are taken too (numpy has no bf16)
        sd16 = {k: v.to(torch.bfloat16) for k, v in net.state_dict().items()}
        m16 = nmformer.from_state_dict(sd16, cfg, pattern="2:8")
        self.assertEqual(m16.pattern, "2:8")


class TestTorchTokens(unittest.TestCase):
    """Token ids and masks as torch tensors (int64, int32, a bool mask): the numpy results."""

    def test_torch_ids(self):
        torch, _ = _torch()
        bert = nmformer.load(os.path.join(HF, "bert_cls_pad"))
        ids, types, mask = (hf_file("bert_cls_pad", f + ".npy")
                            for f in ("input_ids", "token_type_ids", "attention_mask"))
        want = bert.run(ids, token_type_ids=types, attention_mask=mask)
        got = bert.run(torch.from_numpy(ids).int(), token_type_ids=torch.from_numpy(types),
                       attention_mask=torch.from_numpy(mask).bool())
        np.testing.assert_array_equal(got, want)
        gpt2 = nmformer.load(os.path.join(HF, "gpt2_lm"))
        prompt = hf_file("gpt2_lm", "input_ids.npy")
        np.testing.assert_array_equal(gpt2.generate(torch.from_numpy(prompt), 5),
                                      hf_file("gpt2_lm", "generate.npy"))
        with self.assertRaises(nmformer.InvalidArgumentError):
            gpt2.run(torch.from_numpy(prompt).float())
        with self.assertRaises(nmformer.InvalidArgumentError):
            gpt2.run(torch.from_numpy(prompt).bfloat16())


class TestVenvInstall(unittest.TestCase):
    """`pip install ./python` into a fresh venv, offline, then the installed package finds the
    checkout's build/ by itself (no NMFORMER_LIB) and runs a model."""

    def test_pip_install_offline(self):
        build = os.environ.get("NMF_BUILD_DIR")
        if not build:
            self.skipTest("NMF_BUILD_DIR not set (run through ctest)")
        tmp = tempfile.mkdtemp(prefix="nmf_venv_")
        self.addCleanup(shutil.rmtree, tmp, True)
        venv = os.path.join(tmp, "venv")
        r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"cannot make a venv (Debian: python3-venv): {r.stderr.strip()}")
        # a copy of the checkout's python/ next to a build/ (so pip's in-tree build leaves
        # the real checkout untouched)
        src = os.path.join(tmp, "src")
        shutil.copytree(os.path.join(SRC, "python"), os.path.join(src, "python"),
                        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        os.symlink(os.path.abspath(build), os.path.join(src, "build"))
        py = os.path.join(venv, "bin", "python")
        r = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-deps",
                            "--no-index", "--quiet", os.path.join(src, "python")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        code = ("import sys, numpy as np, nmformer\n"
                "m = nmformer.load(sys.argv[1])\n"
                "np.save(sys.argv[2], m.run(np.load(sys.argv[3])))\n"
                "print(nmformer.__file__); print(nmformer.library_path())\n")
        env = {k: v for k, v in os.environ.items() if k not in ("NMFORMER_LIB", "PYTHONPATH")}
        path = os.path.join(MODEL_FIX, "vit_2to8.safetensors")
        inp = os.path.join(MODEL_FIX, "vit_2to8.input.npy")
        out = os.path.join(tmp, "y.npy")
        r = subprocess.run([py, "-c", code, path, out, inp], capture_output=True, text=True,
                           env=env, cwd=tmp)
        self.assertEqual(r.returncode, 0, r.stderr)
        where, lib = r.stdout.split()
        self.assertTrue(where.startswith(venv), where)  # the installed copy, not the checkout
        self.assertEqual(lib, os.path.join(src, "build", "libnmformer.so.0"))
        np.testing.assert_array_equal(np.load(out), nmformer.load(path).run(np.load(inp)))


if __name__ == "__main__":
    unittest.main()
