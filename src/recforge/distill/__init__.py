"""Knowledge distillation: teachers as data (TeacherSignal) and the terms that read them."""
