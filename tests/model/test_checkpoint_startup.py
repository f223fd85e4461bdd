"""What a first prediction waits for: loading the bundled model must not pull in torch's compiler
(torch._dynamo, about 1.3 s of imports: a model built on the "meta" device initializes through it)."""
import subprocess
import sys

LOAD = ("import sys; from dbmtl.inference import Predictor; "
        "p = Predictor.from_pretrained('default'); p.predict({'HBB': 'MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLL'}); "
        "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo'))[:3])")


def test_loading_and_predicting_imports_no_compiler():
    out = subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
