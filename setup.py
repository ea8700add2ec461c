"""Build: the C kernels in csrc/ and the Cython wrappers in inception_native/.

OpenMP is used when the compiler can build and link a test program with -fopenmp, otherwise
the kernels build serial (INCEPTION_NATIVE_NO_OPENMP=1 forces that). No -march=native and no
-ffast-math: hot kernels are multi-versioned (csrc/common.h) and NaNs must stay visible.
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

COMPILE_FLAGS = ["-O3", "-std=c99", "-fopenmp-simd"]
OPENMP_FLAGS = ["-fopenmp"]


def extension(name, *c_files):
    """inception_native.<name> from inception_native/<name>.pyx and csrc/<c_file>.c."""
    return Extension(
        f"inception_native.{name}",
        [f"inception_native/{name}.pyx"] + [f"csrc/{c}.c" for c in c_files],
        include_dirs=["csrc", numpy.get_include()],
        depends=sorted(glob.glob("csrc/*.h") + glob.glob("csrc/*.pxd")),  # a header change rebuilds
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )


EXTENSIONS = [
    extension("blas", "blas"),
    extension("batchnorm", "batchnorm", "blas"),
    extension("_runtime", "runtime"),
    extension("_article", "darknet_article"),
    extension("conv", "conv", "convk", "nchwc", "peak", "im2col", "gemm", "blas"),
    extension("pool", "pool"),
    extension("activation", "activation"),
]


def compiler_has_openmp(compiler):
    """Compile and link a one-line OpenMP program with this build's compiler."""
    if os.environ.get("INCEPTION_NATIVE_NO_OPENMP"):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "omp.c")
        with open(source, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=OPENMP_FLAGS)
            compiler.link_executable(objects, "omp", output_dir=tmp, extra_postargs=OPENMP_FLAGS)
            return subprocess.run([os.path.join(tmp, "omp")]).returncode == 0
        except Exception:  # any compile, link or run failure means: build serial
            return False


class BuildExt(build_ext):
    def run(self):
        super().run()
        # Also place the compiled modules in the source tree, as an in-place build would: from
        # the repository root, `python -m inception_native` imports this folder, not the
        # installed copy, and must find them here too.
        if not self.inplace:
            try:
                self.copy_extensions_to_source()
            except OSError as error:  # a read-only checkout still installs fine
                print(f"inception_native: compiled modules not copied to the source tree: {error}",
                      file=sys.stderr)

    def build_extensions(self):
        openmp = compiler_has_openmp(self.compiler)
        flags = COMPILE_FLAGS + (OPENMP_FLAGS if openmp else [])
        print(f"inception_native: OpenMP {'on' if openmp else 'off'}", file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args += flags
            ext.extra_link_args += OPENMP_FLAGS if openmp else []
            ext.define_macros.append(("IN_BUILD_FLAGS", '"' + " ".join(flags) + '"'))
        super().build_extensions()


setup(
    ext_modules=cythonize(EXTENSIONS, include_path=["csrc"], compiler_directives={"language_level": 3}),
    cmdclass={"build_ext": BuildExt},
)
