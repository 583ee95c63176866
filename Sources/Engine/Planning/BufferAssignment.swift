/// Assigns every arena value (graph inputs and step outputs) a region of one float arena.
///
/// Liveness is measured in step indices (``Liveness``): a value is born at its producing step
/// (graph inputs before step 0) and dies after its last reader (graph outputs never die). Values share
/// *slots*: a dead value's slot returns to a free list and the next value takes the
/// best-fitting free slot (growing it if none is large enough). An elementwise step may
/// write its output into the slot of an input that dies at that step (in place). Aliases
/// (`flatten`, `identity`) share their root's slot. Conv scratch (im2col) follows the slots.
struct BufferAssignment {
    /// Region of each root value.
    var spans: [String: Span] = [:]
    /// Total arena floats.
    var arenaCount = 0
    /// The im2col scratch region.
    var scratch = Span(.arena, offset: 0, count: 0)

    init(
        protos: [ProtoStep], graph: Graph, shapes: [String: [Int]], aliases: [String: String],
        liveness: Liveness, options: PlanOptions
    ) {
        func root(_ v: String) -> String {
            var v = v
            while let a = aliases[v] { v = a }
            return v
        }
        func roots(_ ops: [Operand]) -> [String] {
            ops.compactMap { if case .value(let v) = $0 { return root(v) } else { return nil } }
        }
        let lastUse = liveness.lastUse

        var slotOf: [String: Int] = [:]
        var capacity: [Int] = []
        var free: [Int] = []
        func size(_ v: String) -> Int { shapes[v]!.reduce(1, *) }
        func allocate(_ v: String) {
            let need = size(v)
            var pick: Int? = nil
            if options.reuseBuffers {
                // Best fit among free slots; else the largest free slot, grown.
                var best: Int? = nil
                for (k, s) in free.enumerated() where capacity[s] >= need {
                    if best == nil || capacity[s] < capacity[free[best!]] { best = k }
                }
                if best == nil, !free.isEmpty {
                    best = free.indices.max { capacity[free[$0]] < capacity[free[$1]] }
                }
                if let b = best { pick = free.remove(at: b) }
            }
            let s = pick ?? capacity.count
            if pick == nil { capacity.append(0) }
            capacity[s] = max(capacity[s], need)
            slotOf[v] = s
        }
        func release(_ v: String) {
            if let s = slotOf[v], options.reuseBuffers { free.append(s) }
        }

        for name in graph.inputs where slotOf[root(name)] == nil { allocate(root(name)) }
        var maxScratch = 0
        for (i, p) in protos.enumerated() {
            guard case .value(let outName) = p.call.output else { continue }
            let out = root(outName)
            if case .conv(let g, _, _, _, _, _, _) = p.call { maxScratch = max(maxScratch, Conv2d.scratchCount(g)) }
            if case .binaryConv(let l, _, _, _, _, _) = p.call { maxScratch = max(maxScratch, l.scratchCount) }
            if case .winograd(let g, let tile, _, _, _, _, _, _) = p.call {
                maxScratch = max(maxScratch, Winograd.scratchCount(g, tile: tile))
            }
            var transferred: String? = nil
            if options.inPlace {
                let candidates = Set(roots(p.call.inPlaceCandidates))
                // Reads besides the candidates, counted per occurrence: a conv whose residual is
                // its own input (`conv(x) + x`) reads x as an input too, so x cannot be overwritten.
                var otherReads = p.call.reads
                for c in p.call.inPlaceCandidates {
                    if let k = otherReads.firstIndex(of: c) { otherReads.remove(at: k) }
                }
                let others = Set(roots(otherReads))
                for c in roots(p.call.inPlaceCandidates)
                where lastUse[c] == i && !others.contains(c) && candidates.contains(c)
                    && size(c) == size(out) && slotOf[c] != nil
                {
                    slotOf[out] = slotOf[c]
                    transferred = c
                    break
                }
            }
            if transferred == nil { allocate(out) }
            var dying = Set<String>()
            for r in roots(p.call.reads) where lastUse[r] == i && r != transferred { dying.insert(r) }
            if lastUse[out] == nil { dying.insert(out) }  // produced but never read
            for r in dying.sorted() { release(r) }
        }

        var offsets: [Int] = []
        var total = 0
        for c in capacity {
            offsets.append(total)
            total += (c + 15) & ~15  // 64-byte aligned slots
        }
        for (v, s) in slotOf { spans[v] = Span(.arena, offset: offsets[s], count: size(v)) }
        scratch = Span(.arena, offset: total, count: maxScratch)
        arenaCount = total + maxScratch
    }
}
