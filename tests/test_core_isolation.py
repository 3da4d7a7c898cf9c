"""The array core imports and runs with astropy and matplotlib blocked."""

import subprocess
import sys
import textwrap


def test_core_imports_with_astropy_and_matplotlib_blocked():
    code = textwrap.dedent(
        """
        import sys

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("astropy", "matplotlib"):
                    raise ImportError(f"blocked: {name}")
                return None

        sys.meta_path.insert(0, Blocker())
        import array_api_strict as xp
        import bgcube.array as core

        b = core.Binning.from_edges([0.0, 1.0, 2.0])
        c = core.fill_histogram(xp.asarray([0.5, 1.5]), xp.asarray([0.5, 0.5]),
                                xp.asarray([1.5, 1.5]), (b, b, b))
        assert int(xp.sum(c)) == 2
        assert not any(m.split(".")[0] in ("astropy", "matplotlib") for m in sys.modules)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
