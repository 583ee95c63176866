import Foundation
import QToolConfig
import Tensors
import TestSupport
import Testing

@testable import Train

/// The optimizer of a QTool step (``Optimizer``: SGD or Adam over ``ParameterGroup``s) against
/// torch: a Python twin builds the parameter groups as `main.py` does (written from
/// `task_cls.py`'s loop, seed-reference §14.3: custom decay, small tensors, custom lr, the
/// `quant_weight` wrapper with `lr_constant`), applies the epoch-0 schedule as
/// `utils.setting_learning_rate` does (a real `CosineAnnealingLR` for the cosine policies) and
/// the wake-up ramp's first iteration, then runs `torch.optim.SGD` / `torch.optim.Adam` for
/// three steps on the same gradients. The groups must agree exactly, the parameters after
/// every step within 1e-6 relative (a few float32 ulps: op order inside torch's kernels).
/// The group learning rates stay those of the first step (the schedule after it is the loop's).
@Suite struct OptimizerTorchTests {
    /// Trainable parameters: a plain conv, a quantized conv with a trainable weight clip, an
    /// activation clip, BN, a depth-wise conv (small: `shape[1] == 1`), the classifier.
    static let parameters: [(name: String, shape: [Int])] = [
        ("conv1.weight", [4, 3, 3, 3]),
        ("layer1.0.conv1.0.weight", [4, 4, 3, 3]),
        ("layer1.0.conv1.0.quant_activation.clip_val", [1]),
        ("layer1.0.conv1.0.quant_weight.clip_val", [4, 1, 1, 1]),
        ("layer1.0.bn1.0.weight", [4]),
        ("layer1.0.bn1.0.bias", [4]),
        ("layer2.0.conv1.0.weight", [4, 4, 3, 3]),
        ("dw.weight", [4, 1, 3, 3]),
        ("fc.weight", [10, 4]),
        ("fc.bias", [10]),
    ]
    /// Every parameter name of the model: also the frozen counters (`requires_grad=False`), so
    /// `layer2.0.conv1.0` (DoReFa weights: no trainable quantizer tensor) is wrapped too.
    static let allNames =
        parameters.map(\.name) + [
            "layer1.0.conv1.0.quant_activation.iteration", "layer1.0.conv1.0.quant_weight.iteration",
            "layer2.0.conv1.0.quant_weight.iteration", "layer2.0.conv1.0.quant_weight.level_num",
        ]

    static let configurations: [[String]] = [
        [
            "--optimizer", "SGD", "--lr", "0.1", "--nesterov", "--wd", "1e-4", "--custom_decay_list", "clip_val",
            "--custom_decay", "5e-4", "--custom_lr_list", "quant_weight", "--custom_lr", "0.01",
            "--lr_policy", "custom_step", "--lr_custom_step", "30,40", "--lr_decay", "0.1",
        ],
        [
            "--optimizer", "SGD", "--lr", "0.05", "--momentum", "0.8", "--decay_small", "--wd", "2e-4",
            "--custom_decay_list", "dw", "--custom_decay", "1e-3",
            "--custom_lr_list", "bn,quant_weight", "--custom_lr", "0.003", "--lr_policy", "cos", "--lr_custom_step", "40",
        ],
        [
            "--optimizer", "SGD", "--lr", "0.1", "--nesterov", "--custom_lr_list", "quant_weight", "--custom_lr", "0.02",
            "--lr_policy", "fix", "--wakeup", "100",
        ],
        [
            "--optimizer", "ADAM", "--lr", "1e-3", "--wd", "1e-4", "--custom_lr_list", "quant_weight,fc.bias",
            "--custom_lr", "1e-4", "--lr_policy", "custom_step", "--lr_custom_step", "30,40",
        ],
        [
            "--optimizer", "ADAM", "--lr", "2e-3", "--wd", "0", "--custom_lr_list", "quant_weight", "--custom_lr", "5e-4",
            "--lr_policy", "sgdr", "--lr_custom_step", "40", "--custom_decay_list", "fc", "--custom_decay", "0.02",
        ],
    ]

    @Test(arguments: configurations)
    func stepsMatchTorch(arguments: [String]) throws {
        guard Python.interpreter != nil || Python.isRequired else { return }
        let options = try QToolOptions().applying(arguments: arguments)
        var rng = SplitMix64(seed: UInt64(arguments.count))
        var values: [String: [Float]] = [:]
        for p in Self.parameters { values[p.name] = rng.floats(p.shape.reduce(1, *), -0.5, 1) }
        // Three steps of gradients; the third leaves `fc.bias` without one (skipped entirely).
        let gradients: [[String: [Float]]] = (0..<3).map { step in
            var g: [String: [Float]] = [:]
            for p in Self.parameters where !(step == 2 && p.name == "fc.bias") { g[p.name] = rng.floats(p.shape.reduce(1, *)) }
            return g
        }
        var optimizer = try Optimizer(
            options: options, parameters: Self.parameters, allNames: Self.allNames, lr: try LearningRate.scheduled(options))
        var ours: [[String: [Float]]] = []
        var state = values
        for g in gradients {
            optimizer.step(&state, gradients: g)
            ours.append(state)
        }

        var wakeup = 0
        if case .int(let w) = options["wakeup"] { wakeup = w }
        let spec: [String: Any] = [
            "optimizer": options.optimizer, "lr": options.lr, "momentum": options.momentum, "nesterov": options.nesterov,
            "wd": options.weightDecay, "decay_small": options.decaySmall, "no_decay_small": options["no_decay_small"] == .bool(true),
            "custom_decay_list": options.customDecayList, "custom_decay": options.customDecay,
            "custom_lr_list": options.customLRList, "custom_lr": options.customLR, "policy": options.lrPolicy,
            "lr_decay": options.lrDecay, "lr_custom_step": options.lrCustomStep, "epochs": options.epochs,
            "eta_min": options.etaMin, "wakeup": wakeup,
            "names": Self.parameters.map(\.name), "shapes": Self.parameters.map(\.shape), "all_names": Self.allNames,
            "values": Self.parameters.map { values[$0.name]!.map(Double.init) },
            "grads": gradients.map { g in Self.parameters.map { g[$0.name].map { $0.map(Double.init) } as Any? ?? NSNull() } },
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let out = try #require(try Python.json(Self.twin, [json]) as? [String: Any])
        let groups = try #require(out["groups"] as? [[String: Any]])
        #expect(groups.count == optimizer.groups.count)
        for (t, o) in zip(groups, optimizer.groups) {
            #expect(t["name"] as? String == o.name)
            #expect(t["lr"] as? Double == o.lr, "\(o.name) lr: \(o.lr) vs \(t["lr"] ?? "-")")
            #expect(t["weight_decay"] as? Double == o.weightDecay, "\(o.name) weight decay")
            #expect((t["lr_constant"] as? Double) == o.lrConstant, "\(o.name) lr_constant")
        }
        let steps = try #require(out["steps"] as? [[[Double]]])
        for (k, step) in steps.enumerated() {
            for (p, want) in zip(Self.parameters, step) {
                let have = ours[k][p.name]!
                let worst = zip(have, want).map { abs(Double($0) - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(worst <= 1e-6, "step \(k + 1), \(p.name): \(worst)")
            }
        }
        // The check must see the rules act: distinct learning rates and decays among the groups.
        #expect(Set(optimizer.groups.map(\.lr)).count > 1 || options.lrPolicy == "fix")
        #expect(Set(optimizer.groups.map(\.weightDecay)).count > 1 || options.weightDecay == 0)
    }

    /// The twin: main.py's parameter groups, utils' epoch-0 schedule and wake-up, torch.optim.
    static let twin = #"""
        import json, sys, torch
        s = json.loads(sys.argv[1])
        params = {}
        for n, sh, v in zip(s["names"], s["shapes"], s["values"]):
            params[n] = torch.nn.Parameter(torch.tensor(v, dtype=torch.float32).reshape(sh))
        all_names = s["all_names"]
        quant_wrapper = []
        for key in all_names:
            if 'quant_weight' in key and 'quant_weight' in s["custom_lr_list"]:
                w = key.split('.quant_weight')[0] + '.weight'
                if w not in quant_wrapper: quant_wrapper.append(w)
        groups = []
        for key in s["names"]:
            value = params[key]; shape = value.shape
            h = {'params': value}
            if any(i in key and len(i) > 0 for i in s["custom_decay_list"]):
                h['weight_decay'] = s["custom_decay"]
            elif (not s["decay_small"] and s["no_decay_small"]) and ((len(shape) == 4 and shape[1] == 1) or len(shape) == 1):
                h['weight_decay'] = 0.0
            if any(i in key and len(i) > 0 for i in s["custom_lr_list"]):
                h['lr'] = s["custom_lr"]
            elif key in quant_wrapper:
                h.setdefault('lr_constant', s["custom_lr"]); h['lr'] = s["custom_lr"]
            groups.append(h)
        if s["optimizer"] == "ADAM":
            opt = torch.optim.Adam(groups, lr=s["lr"], weight_decay=s["wd"])
        else:
            opt = torch.optim.SGD(groups, lr=s["lr"], momentum=s["momentum"], weight_decay=s["wd"], nesterov=s["nesterov"])
        policy, epoch, steps_list = s["policy"], 0, s["lr_custom_step"]
        if policy in ("sgdr", "sgdr_step", "cos"):
            index = len([x for x in steps_list if x <= epoch])
            last = 0 if index == 0 else steps_list[index - 1]
            current = s["epochs"] if index >= len(steps_list) else steps_list[index]
            if policy == "sgdr_step":
                lr = s["lr"] * (s["lr_decay"] ** len([x for x in steps_list if epoch >= x]))
                for g in opt.param_groups: g['initial_lr'] = lr
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, current - last, eta_min=s["eta_min"], last_epoch=-1)
            for g in opt.param_groups:
                if 'lr_constant' in g: g['lr'] = g['lr_constant']
        else:
            if policy == 'decay': lr = s["lr"] * (s["lr_decay"] ** epoch)
            elif policy == 'fix': lr = s["lr"]
            elif policy == 'custom_step': lr = s["lr"] * (s["lr_decay"] ** len([x for x in steps_list if epoch >= x]))
            else: raise SystemExit("policy not in the twin: " + policy)
            for g in opt.param_groups:
                if g.get('lr_constant', None) is not None: continue
                g['lr'] = lr
        if s["wakeup"] > 0:
            it = 0
            for g in opt.param_groups:
                if 'lr_constant' not in g: g['lr'] = g['lr'] * it / s["wakeup"]
        out = {"groups": [{"name": n, "lr": g['lr'], "weight_decay": g['weight_decay'], "lr_constant": g.get('lr_constant')}
                          for n, g in zip(s["names"], opt.param_groups)], "steps": []}
        for grads in s["grads"]:
            opt.zero_grad(set_to_none=True)
            for n, sh, gv in zip(s["names"], s["shapes"], grads):
                if gv is not None: params[n].grad = torch.tensor(gv, dtype=torch.float32).reshape(sh)
            opt.step()
            out["steps"].append([params[n].detach().flatten().tolist() for n in s["names"]])
        print(json.dumps(out))
        """#
}
