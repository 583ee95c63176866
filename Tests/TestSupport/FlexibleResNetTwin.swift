import Foundation

/// A torch model of QTool's flexible ResNet (BasicBlock nets: `resnet20`, `resnet18`) written
/// from the reference's description (seed-reference §7.1-§7.6, §9.5: stems incl. `TResNetStem`
/// and `TResNetStemMaxPool`, block orders, shortcut layouts, `ReShapeResolution` shrink paths
/// with `--order`, `ldn3x3`, `f3x3`, `f0x0`, `s1x1`), used as the expected value for the
/// qtools builds of those variants. Module names are QTool's, so the state dict it saves has
/// QTool's keys. Independent of qtools: the space-to-depth is written as a reshape/permute of
/// the §7.6 layout, not through any qtools code path.
public enum FlexibleResNetTwin {
    /// One twin: model, keywords, `--order`, `--stem_kernel`, input size, and whether to add
    /// LSQ 2-bit quantizer tensors to every quantized wrapper (the torch forward stays float,
    /// so such a case is for export checks only).
    public struct Case: Sendable {
        public var model: String
        public var keyword: String
        public var order: String
        public var stemKernel: Int
        public var size: Int
        public var lsq: Bool

        public init(_ model: String, _ keyword: String, order: String = "none", stemKernel: Int = 1, lsq: Bool = false) {
            self.model = model
            self.keyword = keyword
            self.order = order
            self.stemKernel = stemKernel
            size = keyword.hasPrefix("cifar") ? 32 : 64
            self.lsq = lsq
        }

        /// QTool options of the case (width 0.25; LSQ 2-bit when `lsq`).
        public var arguments: [String] {
            var a = [
                "--model", model, "--keyword", keyword + (lsq ? ",dorefa,lsq" : ""), "--width_alpha", "0.25",
                "--order", order, "--stem_kernel", "\(stemKernel)", "--input_size", "\(size)",
            ]
            if lsq {
                a += [
                    "--fm_bit", "2", "--fm_enable", "--wt_bit", "2", "--wt_enable", "--fm_quant_group", "1",
                    "--wt_quant_group", "1",
                ]
            }
            return a
        }

        /// The case as a `train.sh` config file.
        public var configText: String {
            let opts = arguments.drop(while: { $0 != "--width_alpha" }).joined(separator: " ")
            return """
                dataset='\(keyword.hasPrefix("cifar") ? "cifar100" : "imagenet")'
                model='\(model)'
                keyword='\(keyword + (lsq ? ",dorefa,lsq" : ""))'
                options="$options \(opts)"

                """
        }

        var json: [Any] { [model, keyword, order, stemKernel, size, lsq] }
    }

    /// Runs the twin for `cases`, writing `<dir>/<k>/model.pth` (the state dict),
    /// `input.f32` (2 x 3 x size x size, N(0,1)) and `logits.f32` (also as `input.npy`,
    /// `logits.npy`); returns per case
    /// `{"keys": [...], "shape": [...]}`.
    public static func write(_ cases: [Case], to dir: URL) throws -> [[String: Any]] {
        let data = try JSONSerialization.data(withJSONObject: cases.map(\.json))
        guard let infos = try Python.json(script, [dir.path, String(decoding: data, as: UTF8.self)]) as? [[String: Any]]
        else { throw Failure(message: "twin script returned no list") }
        return infos
    }

    struct Failure: Error { var message: String }

    static let script = """
        import os, sys, json, numpy as np, torch, torch.nn as nn
        def s2d(x, s):
            # §7.6: output channel c*s*s + dy*s + dx at (i, j) = input channel c at (i*s + dy, j*s + dx)
            B, C, H, W = x.shape
            x = x.reshape(B, C, H // s, s, W // s, s).permute(0, 1, 3, 5, 2, 4)
            return x.reshape(B, C * s * s, H // s, W // s)
        class QConv(nn.Conv2d):
            pass  # a QTool custom_conv (quantized wrapper); float here
        class TStem(nn.Module):
            def __init__(s, out, inc, stride, k, quant):
                super().__init__()
                s.stride = stride
                s.conv = (QConv if quant else nn.Conv2d)(inc * stride * stride, out, k, 1, k // 2, bias=False)
            def forward(s, x): return s.conv(s2d(x, s.stride))
        E = nn.Sequential  # empty = identity
        def act(): return nn.PReLU() if "PReLU" in kw else nn.ReLU()
        def norm(c): return nn.BatchNorm2d(c)
        class Block(nn.Module):
            def __init__(s, inp, planes, stride):
                super().__init__()
                s.origin = "origin" in kw
                pre = order in ("bacs", "bcas")
                s.relu1 = nn.ModuleList([act()]); s.relu2 = nn.ModuleList([act()])
                s.fixrelu = "fix" in kw and order in ("cbas", "cbsa")
                if s.fixrelu: s.fix_relu = act(); s.relu2 = nn.ModuleList([E()])
                s.bn1 = nn.ModuleList([norm(inp if pre else planes)])
                s.fixbn = pre and "fix" in kw
                if s.fixbn: s.fix_bn = norm(planes)
                s.bn2 = nn.ModuleList([norm(planes)])
                k2, first, s.only_shrink, s.shrink = 3, True, False, None
                if "ReShapeResolution" in kw and stride != 1:
                    L = []
                    for ch in rorder:
                        if ch == "c": L.append(TStem(planes, inp, stride, 3 if "ldn3x3" in kw else 1, "real_skip" not in kw))
                        if ch == "b": L.append(norm(inp if "preBN" in kw else planes))
                        if ch == "a": L.append(act())
                    if "ldn3x3" in kw: s.only_shrink, first, k2 = True, False, 0
                    if "f3x3" not in kw: s.shrink = nn.Sequential(*L); inp, stride = planes, 1
                    if "f0x0" in kw:
                        first = False; s.origin = True
                        s.bn1 = nn.ModuleList([E()]); s.relu1 = nn.ModuleList([E()])
                    if "s1x1" in kw: k2 = 1
                s.use_skip = stride != 1 or inp != planes
                single = "singleconv" in kw
                skip = [E() if stride == 1 or single else nn.AvgPool2d(stride)]
                if inp != planes:
                    cv = (nn.Conv2d if "real_skip" in kw else QConv)(inp, planes, 1, stride if single else 1, bias=False)
                    if order == "bacs": skip += [norm(inp), act(), cv] + ([norm(planes)] if "fix" in kw else [])
                    elif order == "bcas": skip += [norm(inp), cv, act()] + ([norm(planes)] if "fix" in kw else [])
                    else: skip += [cv, norm(planes)] + ([] if "fix" in kw else [act()])
                s.skip = nn.Sequential(*skip)
                s.conv1 = nn.ModuleList([QConv(inp, planes, 3, stride, 1, bias=False) if first else E()])
                s.conv2 = nn.ModuleList([QConv(planes, planes, k2, 1, k2 // 2, bias=False) if k2 else E()])
            def seq(s, x, conv, relu, bn, skip, use):
                if order == "cbsa":
                    y = bn(conv(x))
                    return relu(y + skip if use else y)
                y = {"cbas": lambda: relu(bn(conv(x))), "cabs": lambda: bn(relu(conv(x))),
                     "bacs": lambda: conv(relu(bn(x))), "bcas": lambda: relu(conv(bn(x)))}[order]()
                return y + skip if use else y
            def forward(s, x):
                if s.shrink is not None:
                    x = s.shrink(x)
                    if s.only_shrink: return x
                res = s.skip(x) if s.use_skip else x
                add = not s.origin
                out = s.seq(x, s.conv1[0], s.relu1[0], s.bn1[0], res, add)
                out = s.seq(out, s.conv2[0], s.relu2[0], s.bn2[0], out, add)
                if s.origin:
                    if s.fixbn: out = s.fix_bn(out)
                    out = out + res
                    if s.fixrelu: out = s.fix_relu(out)
                return out
        class Net(nn.Module):
            def __init__(s, layers, nc):
                super().__init__()
                c0 = int(64 * 0.25)
                if cifar: s.conv1 = nn.Conv2d(3, c0, 3, 1, 1, bias=False); s.maxpool = E()
                elif "TResNetStemMaxPool" in kw: s.conv1 = TStem(c0, 3, 2, stem_kernel, False); s.maxpool = nn.MaxPool2d(3, 2, 1)
                elif "TResNetStem" in kw: s.conv1 = TStem(c0, 3, 4, stem_kernel, False); s.maxpool = E()
                else: s.conv1 = nn.Conv2d(3, c0, 7, 2, 3, bias=False); s.maxpool = nn.MaxPool2d(3, 2, 1)
                inp = c0
                for i, n in enumerate(layers):
                    planes = c0 * 2 ** i
                    blocks = []
                    for k in range(n):
                        blocks.append(Block(inp, planes, 2 if k == 0 and i > 0 else 1)); inp = planes
                    setattr(s, f"layer{i + 1}", nn.Sequential(*blocks))
                if "preBN" in kw: s.bn1 = E(); s.bn2 = nn.Sequential(norm(inp))
                else: s.bn1 = nn.Sequential(norm(c0), act()); s.bn2 = E()
                s.fc = nn.Linear(inp, nc)
                s.n = len(layers)
            def forward(s, x):
                x = s.conv1(x)
                x = s.maxpool(s.bn1(x)) if "fix_pooling" in kw else s.bn1(s.maxpool(x))
                for i in range(s.n): x = getattr(s, f"layer{i + 1}")(x)
                return s.fc(s.bn2(x).mean([2, 3]))
        def run(d, model, keyword, ro, sk, size, lsq):
            global kw, order, rorder, stem_kernel, cifar
            kw, rorder, stem_kernel = keyword.split(","), ro, sk
            order = next(o for o in ["cbas", "cbsa", "cabs", "bacs", "bcas"] if o in kw)
            cifar = "cifar100" in kw or "cifar10" in kw
            nc = 100 if "cifar100" in kw else 10 if "cifar10" in kw else 1000
            torch.manual_seed(7)
            os.makedirs(d, exist_ok=True)
            net = Net({"resnet20": [3, 3, 3], "resnet18": [2, 2, 2, 2]}[model], nc)
            x = torch.randn(2, 3, size, size)
            bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
            for m in bns: m.momentum = 1.0
            with torch.no_grad():
                net.train(); net(x)
                for m in bns: m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.3, 0.3); m.running_var.clamp_(min=0.05)
                for m in net.modules():
                    if isinstance(m, nn.PReLU): m.weight.uniform_(0.05, 0.4)
                net.eval(); y = net(x)
            sd = net.state_dict()
            if lsq:
                # LSQ 2-bit tensors (§11.2, A.4) on every quantized wrapper; the forward above is float.
                for name, m in net.named_modules():
                    if isinstance(m, QConv):
                        sd[name + ".quant_activation.iteration"] = torch.tensor([100.0])
                        sd[name + ".quant_activation.level_num"] = torch.tensor([4.0])
                        sd[name + ".quant_activation.clip_val"] = torch.tensor([1.5])
                        sd[name + ".quant_weight.iteration"] = torch.tensor([100.0])
                        sd[name + ".quant_weight.level_num"] = torch.tensor([4.0])
                        sd[name + ".quant_weight.clip_val"] = (2 * m.weight.abs().mean()).reshape(1, 1, 1, 1).clone()
            torch.save(sd, d + "/model.pth")
            x.numpy().astype("<f4").tofile(d + "/input.f32")
            y.numpy().astype("<f4").tofile(d + "/logits.f32")
            np.save(d + "/input.npy", x.numpy().astype("<f4")); np.save(d + "/logits.npy", y.numpy().astype("<f4"))
            return {"keys": list(sd.keys()), "shape": list(y.shape)}
        cases = json.loads(sys.argv[2])
        print(json.dumps([run(f"{sys.argv[1]}/{k}", *c) for k, c in enumerate(cases)]))
        """
}
