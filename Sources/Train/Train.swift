import Engine
import Models

/// The trainer's module, empty until the training core lands (see docs/architecture.md).
///
/// It will hold reverse-mode differentiation over the graphs `Models` builds (weights,
/// quantizer parameters and BN statistics held as graph variables, ``Graph/variables``), the
/// optimizer and the training loop of `qtools train`. It imports Engine and Models and is
/// imported only by the CLI.
public enum Train {}
