// WGSL variant of shared_twice.comp (same bindings and push block).
struct Params { n: u32 }
var<immediate> p: Params;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
var<workgroup> tile: array<f32, 65>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let i = gid.x;
    var v = 0.0;
    if (i < p.n) { v = x[i]; }
    tile[lid.x] = v;
    workgroupBarrier();
    if (i < p.n) { y[i] = 2.0 * tile[lid.x]; }
}
