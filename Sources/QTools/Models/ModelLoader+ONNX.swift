import Engine
import Formats
import Models
import QToolConfig
import Tensors
import Foundation

extension ModelLoader {
    /// An `.onnx` file imported into the engine (every node must be an op qtools runs).
    static func onnx(_ path: String) throws -> (BuiltModel, QToolOptions) {
        let store = try ByteStore.map(path: path)
        let model: ONNXModel
        do {
            model = try ONNXReader.model(store.all, baseDirectory: (path as NSString).deletingLastPathComponent)
        } catch var e {
            if e.file == nil { e.file = path }
            throw e
        }
        do {
            return (try ONNXImport.builtModel(model, name: path), QToolOptions())
        } catch { throw ModelLoadError(file: path, error: error) }
    }
}
