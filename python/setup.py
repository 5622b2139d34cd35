"""Pure Python (the library is loaded with ctypes at run time; nothing is compiled here).

One addition to setuptools' build_py: the installed package records the checkout it was built
from (nmformer/_source.py), so that `make && pip install ./python` finds the checkout's
build/libnmformer.so without NMFORMER_LIB (python/nmformer/_loader.py has the search order)."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class build_py_recording_source(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "nmformer", "_source.py")
        with open(target, "w") as f:
            f.write('"""Written by setup.py: the checkout this copy was installed from."""\n')
            f.write(f"SOURCE_DIR = {SOURCE_DIR!r}\n")


setup(cmdclass={"build_py": build_py_recording_source})
