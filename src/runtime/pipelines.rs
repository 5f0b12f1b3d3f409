//! Shader modules and the pipeline cache: every (family, tile) module and every (family, entry
//! point, binding count, tile) pipeline is compiled once per device.

use anyhow::{bail, Result};
use std::collections::HashMap;
use std::sync::Arc;

use super::kernels::{Family, KernelCall};
use super::tile::Tile;

/// A pipeline is one entry point of one module, for one binding count.
type PipelineKey = (Family, &'static str, usize, Option<Tile>);
/// A module is one family, generated for one GEMM tile where the family has one.
type ModuleKey = (Family, Option<Tile>);

#[derive(Default)]
pub(crate) struct KernelCache {
    modules: HashMap<ModuleKey, Arc<wgpu::ShaderModule>>,
    layouts: HashMap<usize, (Arc<wgpu::BindGroupLayout>, Arc<wgpu::PipelineLayout>)>,
    pipelines: HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>,
}

/// A ready pipeline and the layout its bind groups must use.
pub struct Kernel {
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub bind_layout: Arc<wgpu::BindGroupLayout>,
}

impl KernelCache {
    fn layout(
        &mut self,
        device: &wgpu::Device,
        storage: usize,
    ) -> (Arc<wgpu::BindGroupLayout>, Arc<wgpu::PipelineLayout>) {
        self.layouts
            .entry(storage)
            .or_insert_with(|| {
                let mut entries = vec![wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }];
                for i in 0..storage {
                    entries.push(wgpu::BindGroupLayoutEntry {
                        binding: i as u32 + 1,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage { read_only: false },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    });
                }
                let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("kernel-bindings"),
                    entries: &entries,
                });
                let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some("kernel-layout"),
                    bind_group_layouts: &[Some(&bgl)],
                    immediate_size: 0,
                });
                (Arc::new(bgl), Arc::new(pl))
            })
            .clone()
    }

    /// The pipeline for `call`, compiled on first use and cached by (family, entry, binding count,
    /// tile).
    pub(crate) fn kernel(&mut self, device: &wgpu::Device, call: &KernelCall) -> Result<Kernel> {
        let storage = call.operands.len();
        let (bgl, pl) = self.layout(device, storage);
        let key = (call.family, call.entry, storage, call.tile);
        if let Some(p) = self.pipelines.get(&key) {
            return Ok(Kernel { pipeline: p.clone(), bind_layout: bgl });
        }
        let module_key = (call.family, call.tile);
        let module = match self.modules.get(&module_key) {
            Some(m) => m.clone(),
            None => {
                let desc = wgpu::ShaderModuleDescriptor {
                    label: Some(call.family.name()),
                    source: wgpu::ShaderSource::Wgsl(call.family.source_for(call.tile.as_ref())?.into()),
                };
                let m = if call.family.unchecked() {
                    // SAFETY: `Family::unchecked` lists only kernels that keep every access inside
                    // its binding, divide only by non-zero shape dimensions and loop a bounded number
                    // of times; tests run every kernel between poisoned guard regions.
                    unsafe { device.create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked()) }
                } else {
                    device.create_shader_module(desc)
                };
                let m = Arc::new(m);
                self.modules.insert(module_key, m.clone());
                m
            }
        };
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(call.entry),
            layout: Some(&pl),
            module: &module,
            entry_point: Some(call.entry),
            // The same kernels write every workgroup-memory element before reading it, so the zero fill
            // wgpu would insert at the start of each workgroup is skipped for them.
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                zero_initialize_workgroup_memory: !call.family.unchecked(),
            },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            bail!("building kernel {}::{}: {e}", call.family.name(), call.entry);
        }
        let pipeline = Arc::new(pipeline);
        self.pipelines.insert(key, pipeline.clone());
        Ok(Kernel { pipeline, bind_layout: bgl })
    }
}
