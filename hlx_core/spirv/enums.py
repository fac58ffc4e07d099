"""The SPIR-V enumerants reflection needs (values from the SPIR-V specification's grammar).

Only what HLX reads is listed; an enumerant missing from ``CAPABILITIES`` is reported as ``Capability<N>``
rather than refused, since a new capability must not make a valid module unreadable.
"""
from __future__ import annotations

# Opcodes.
OP_NAME = 5
OP_MEMBER_NAME = 6
OP_EXTENSION = 10
OP_ENTRY_POINT = 15
OP_EXECUTION_MODE = 16
OP_CAPABILITY = 17
OP_TYPE_BOOL = 20
OP_TYPE_INT = 21
OP_TYPE_FLOAT = 22
OP_TYPE_VECTOR = 23
OP_TYPE_MATRIX = 24
OP_TYPE_IMAGE = 25
OP_TYPE_SAMPLER = 26
OP_TYPE_SAMPLED_IMAGE = 27
OP_TYPE_ARRAY = 28
OP_TYPE_RUNTIME_ARRAY = 29
OP_TYPE_STRUCT = 30
OP_TYPE_POINTER = 32
OP_TYPE_FORWARD_POINTER = 39
OP_CONSTANT_TRUE = 41
OP_CONSTANT_FALSE = 42
OP_CONSTANT = 43
OP_CONSTANT_COMPOSITE = 44
OP_CONSTANT_NULL = 46
OP_SPEC_CONSTANT_TRUE = 48
OP_SPEC_CONSTANT_FALSE = 49
OP_SPEC_CONSTANT = 50
OP_SPEC_CONSTANT_COMPOSITE = 51
OP_SPEC_CONSTANT_OP = 52
OP_VARIABLE = 59
OP_DECORATE = 71
OP_MEMBER_DECORATE = 72
OP_EXECUTION_MODE_ID = 331
OP_DECORATE_ID = 332
OP_TYPE_COOPERATIVE_MATRIX_KHR = 4456
OP_TYPE_COOPERATIVE_MATRIX_NV = 5358

# Execution modes.
MODE_LOCAL_SIZE = 17
MODE_LOCAL_SIZE_ID = 38

# Decorations.
DEC_RELAXED_PRECISION = 0
DEC_SPEC_ID = 1
DEC_BLOCK = 2
DEC_BUFFER_BLOCK = 3
DEC_ROW_MAJOR = 4
DEC_ARRAY_STRIDE = 6
DEC_MATRIX_STRIDE = 7
DEC_BUILTIN = 11
DEC_NON_WRITABLE = 24
DEC_NON_READABLE = 25
DEC_BINDING = 33
DEC_DESCRIPTOR_SET = 34
DEC_OFFSET = 35

BUILTIN_WORKGROUP_SIZE = 25

# The FP encoding operand of OpTypeFloat (SPV_KHR_bfloat16, SPV_EXT_float8): a 16-bit float with encoding 0
# is a bfloat16, not an IEEE half.
FP_ENCODINGS = {0: "bfloat16", 4214: "float8_e4m3", 4215: "float8_e5m2"}

# Scopes and cooperative-matrix uses, as OpTypeCooperativeMatrix{KHR,NV} operands name them.
SCOPES = {0: "cross-device", 1: "device", 2: "workgroup", 3: "subgroup", 4: "invocation", 5: "queue-family"}
MATRIX_USES = {0: "a", 1: "b", 2: "accumulator"}

# Storage classes.
SC_UNIFORM_CONSTANT = 0
SC_UNIFORM = 2
SC_PUSH_CONSTANT = 9
SC_STORAGE_BUFFER = 12
SC_PHYSICAL_STORAGE_BUFFER = 5349

EXECUTION_MODELS = {
    0: "Vertex", 1: "TessellationControl", 2: "TessellationEvaluation", 3: "Geometry", 4: "Fragment",
    5: "GLCompute", 6: "Kernel", 5267: "TaskNV", 5268: "MeshNV", 5313: "RayGenerationKHR",
    5314: "IntersectionKHR", 5315: "AnyHitKHR", 5316: "ClosestHitKHR", 5317: "MissKHR", 5318: "CallableKHR",
    5364: "TaskEXT", 5365: "MeshEXT",
}
GL_COMPUTE = "GLCompute"

CAPABILITIES = {
    0: "Matrix", 1: "Shader", 2: "Geometry", 3: "Tessellation", 4: "Addresses", 5: "Linkage", 6: "Kernel",
    7: "Vector16", 8: "Float16Buffer", 9: "Float16", 10: "Float64", 11: "Int64", 12: "Int64Atomics",
    13: "ImageBasic", 14: "ImageReadWrite", 15: "ImageMipmap", 17: "Pipes", 18: "Groups",
    19: "DeviceEnqueue", 20: "LiteralSampler", 21: "AtomicStorage", 22: "Int16",
    23: "TessellationPointSize", 24: "GeometryPointSize", 25: "ImageGatherExtended",
    27: "StorageImageMultisample", 28: "UniformBufferArrayDynamicIndexing",
    29: "SampledImageArrayDynamicIndexing", 30: "StorageBufferArrayDynamicIndexing",
    31: "StorageImageArrayDynamicIndexing", 32: "ClipDistance", 33: "CullDistance", 34: "ImageCubeArray",
    35: "SampleRateShading", 36: "ImageRect", 37: "SampledRect", 38: "GenericPointer", 39: "Int8",
    40: "InputAttachment", 41: "SparseResidency", 42: "MinLod", 43: "Sampled1D", 44: "Image1D",
    45: "SampledCubeArray", 46: "SampledBuffer", 47: "ImageBuffer", 48: "ImageMSArray",
    49: "StorageImageExtendedFormats", 50: "ImageQuery", 51: "DerivativeControl",
    52: "InterpolationFunction", 53: "TransformFeedback", 54: "GeometryStreams",
    55: "StorageImageReadWithoutFormat", 56: "StorageImageWriteWithoutFormat", 57: "MultiViewport",
    58: "SubgroupDispatch", 59: "NamedBarrier", 60: "PipeStorage", 61: "GroupNonUniform",
    62: "GroupNonUniformVote", 63: "GroupNonUniformArithmetic", 64: "GroupNonUniformBallot",
    65: "GroupNonUniformShuffle", 66: "GroupNonUniformShuffleRelative", 67: "GroupNonUniformClustered",
    68: "GroupNonUniformQuad", 69: "ShaderLayer", 70: "ShaderViewportIndex", 71: "UniformDecoration",
    4423: "SubgroupBallotKHR", 4427: "DrawParameters", 4431: "SubgroupVoteKHR",
    4433: "StorageBuffer16BitAccess", 4434: "UniformAndStorageBuffer16BitAccess",
    4435: "StoragePushConstant16", 4436: "StorageInputOutput16", 4437: "DeviceGroup", 4439: "MultiView",
    4441: "VariablePointersStorageBuffer", 4442: "VariablePointers", 4445: "AtomicStorageOps",
    4448: "StorageBuffer8BitAccess", 4449: "UniformAndStorageBuffer8BitAccess",
    4450: "StoragePushConstant8", 4464: "DenormPreserve", 4465: "DenormFlushToZero",
    4466: "SignedZeroInfNanPreserve", 4467: "RoundingModeRTE", 4468: "RoundingModeRTZ",
    4472: "RayQueryKHR", 4479: "RayTracingKHR", 5055: "ShaderClockKHR", 5301: "ShaderNonUniform",
    5302: "RuntimeDescriptorArray", 5306: "UniformBufferArrayNonUniformIndexing",
    5308: "StorageBufferArrayNonUniformIndexing", 5345: "VulkanMemoryModel",
    5346: "VulkanMemoryModelDeviceScope", 5347: "PhysicalStorageBufferAddresses",
    5350: "ComputeDerivativeGroupLinearNV", 5357: "CooperativeMatrixNV", 6016: "DotProductInputAll",
    6017: "DotProductInput4x8Bit", 6018: "DotProductInput4x8BitPacked", 6019: "DotProduct",
    6022: "CooperativeMatrixKHR", 5116: "BFloat16TypeKHR", 5117: "BFloat16DotProductKHR",
    5118: "BFloat16CooperativeMatrixKHR", 6026: "GroupNonUniformRotateKHR", 6033: "AtomicFloat32AddEXT",
    6034: "AtomicFloat64AddEXT", 6095: "AtomicFloat16AddEXT",
}


def capability_name(value: int) -> str:
    return CAPABILITIES.get(value, f"Capability{value}")


def execution_model_name(value: int) -> str:
    return EXECUTION_MODELS.get(value, f"ExecutionModel{value}")
