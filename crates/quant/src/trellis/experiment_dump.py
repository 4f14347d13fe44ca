# Dump W (f32) and Hessians 2/N·XᵀX (f64 sums of f32 window products) of some SmolLM2 linears
# for trellis/experiment.rs:
# cal = GPL-3 (16×256 tokens spread over the text), val = IDLE's help.html as text
# (/work/q-data/val.txt, held out), eval = fixtures/text/english.txt (the perplexity text).
# Extra calibration sets: TAG=PATH:SEQ:COUNT arguments (COUNT contiguous windows from the
# start, as `metal-marlin quantize` takes them); experiment.rs reads them with Q_CAL=TAG.
# Usage: /opt/refenv/bin/python experiment_dump.py 0,3,15,29 [TAG=PATH:SEQ:COUNT ...]
#        (writes /work/q-data/; with extra sets, only those and no weights)
import html, os, re, sys, sysconfig
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(int(os.environ.get('THREADS', '2')))
os.makedirs('/work/q-data', exist_ok=True)
if not os.path.exists('/work/q-data/val.txt'):
    s = open(os.path.join(sysconfig.get_paths()['stdlib'], 'idlelib', 'help.html')).read()
    s = html.unescape(re.sub(r'<[^>]+>', ' ', re.sub(r'<(script|style).*?</\1>', '', s, flags=re.S)))
    open('/work/q-data/val.txt', 'w').write(re.sub(r'\s+', ' ', s))
base = '/work/smol-quality/base-f16'
tok = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32).eval()
layers = [int(x) for x in sys.argv[1].split(',')]
mods = {}
for l in layers:
    L = model.model.layers[l]
    for nm, m in [('q', L.self_attn.q_proj), ('o', L.self_attn.o_proj), ('up', L.mlp.up_proj), ('down', L.mlp.down_proj), ('v', L.self_attn.v_proj), ('k', L.self_attn.k_proj), ('gate', L.mlp.gate_proj)]:
        mods[f'{l}.{nm}'] = m
acc = {}
def hook(name):
    def f(m, inp, out):
        x = inp[0].reshape(-1, inp[0].shape[-1])
        h, n = acc.get(name, (0, 0))
        acc[name] = (h + (x.T @ x).double(), n + x.shape[0])
    return f
hs = [m.register_forward_hook(hook(n)) for n, m in mods.items()]
def run(path, seq, count, contiguous):
    ids = tok(open(path).read(), return_tensors='pt').input_ids[0]
    print(path, len(ids))
    step = seq if contiguous else max(1, (len(ids) - seq) // max(1, count - 1))
    with torch.no_grad():
        for i in range(count):
            s = min(i * step, len(ids) - seq)
            model(ids[s:s + seq][None])
sets = [('cal', '/usr/share/common-licenses/GPL-3', 256, 16, False),
        ('val', '/work/q-data/val.txt', 512, 16, False),
        ('eval', '/work/main/fixtures/text/english.txt', 512, 8, False)]
extra = [a.split('=', 1) for a in sys.argv[2:]]
if extra:
    sets = [(t, *(lambda p, s, c: (p, int(s), int(c), True))(*spec.rsplit(':', 2))) for t, spec in extra]
for tag, path, seq, count, contiguous in sets:
    acc.clear()
    run(path, seq, count, contiguous)
    for n, m in mods.items():
        h, cnt = acc[n]
        (2.0 * h / cnt).numpy().astype('<f8').tofile(f'/work/q-data/{n}.{tag}.h')
for n, m in ([] if extra else mods.items()):
    w = m.weight.detach().float().numpy()
    w.astype('<f4').tofile(f'/work/q-data/{n}.w')
    print(n, w.shape)
