import Engine
import Formats
import Foundation
import Models
import QToolConfig
import Tensors

extension ModelLoader {
    /// An `.onnx` file imported into the engine (every node must be an op qtools runs), and
    /// the external data files it read.
    static func onnx(_ path: String) throws -> (BuiltModel, QToolOptions, [String]) {
        let store = try ByteStore.map(path: path)
        let model: ONNXModel
        do {
            model = try ONNXReader.model(store.all, baseDirectory: (path as NSString).deletingLastPathComponent)
        } catch var e {
            if e.file == nil { e.file = path }
            throw e
        }
        let dir = (path as NSString).deletingLastPathComponent
        let external = Set(model.summary.initializers.compactMap(\.location)).sorted().map {
            dir.isEmpty ? $0 : dir + "/" + $0
        }
        do {
            return (try ONNXImport.builtModel(model, name: path), QToolOptions(), external)
        } catch { throw ModelLoadError(file: path, error: error) }
    }
}
