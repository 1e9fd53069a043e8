//! A mock runtime: System, Balances (existential deposit 1_000_000_000 as in the dev runtime)
//! and the pallet with the protocol's constants.

use crate as pallet_decentralml;
use frame_support::{derive_impl, parameter_types, traits::ConstU32, PalletId};
use sp_runtime::{traits::IdentityLookup, AccountId32, BuildStorage};

/// `u32` block numbers, as the protocol's `BlockNumber`.
type Block = frame_system::mocking::MockBlockU32<Test>;
/// 32-byte accounts as in the real runtime: `into_sub_account_truncating` truncates to the
/// account's size, so a `u64` account would give every task the same escrow account.
pub type AccountId = AccountId32;
pub type Balance = u128;

pub const ED: Balance = 1_000_000_000;
pub const UNIT: Balance = 1_000_000_000_000;
pub const ALICE: AccountId = AccountId32::new([1u8; 32]);
pub const BOB: AccountId = AccountId32::new([2u8; 32]);
pub const CHARLIE: AccountId = AccountId32::new([3u8; 32]);
pub const DAVE: AccountId = AccountId32::new([4u8; 32]);
pub const EVE: AccountId = AccountId32::new([5u8; 32]);
pub const FERDIE: AccountId = AccountId32::new([6u8; 32]);
/// An account with no balance at all.
pub const NOBODY: AccountId = AccountId32::new([99u8; 32]);
pub const ENDOWMENT: Balance = 1_000_000 * UNIT;

frame_support::construct_runtime!(
	pub enum Test {
		System: frame_system = 0,
		Balances: pallet_balances = 2,
		DecentralML: pallet_decentralml = 8,
	}
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = IdentityLookup<AccountId>;
	type AccountData = pallet_balances::AccountData<Balance>;
}

parameter_types! {
	pub const ExistentialDeposit: Balance = ED;
	pub const DecentralMLPalletId: PalletId = PalletId(*b"decentml");
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type ExistentialDeposit = ExistentialDeposit;
	type AccountStore = System;
}

impl pallet_decentralml::Config for Test {
	type Currency = Balances;
	type PalletId = DecentralMLPalletId;
	type MaxAssignments = ConstU32<64>;
	type MaxQuestionLength = ConstU32<2048>;
	type MaxCidLength = ConstU32<128>;
	type MaxResultLength = ConstU32<2048>;
	type MinReward = ExistentialDeposit;
	type MaxScore = ConstU32<1_000_000>;
	type MaxPeers = ConstU32<64>;
	type MaxPeerRounds = ConstU32<10_000>;
	type WeightInfo = ();
}

/// Alice, Bob, Charlie, Dave, Eve and Ferdie endowed with `ENDOWMENT`, at block 1 (events are recorded from
/// block 1 on).
pub fn new_test_ext() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default().build_storage().unwrap();
	pallet_balances::GenesisConfig::<Test> {
		balances: vec![
			(ALICE, ENDOWMENT),
			(BOB, ENDOWMENT),
			(CHARLIE, ENDOWMENT),
			(DAVE, ENDOWMENT),
			(EVE, ENDOWMENT),
			(FERDIE, ENDOWMENT),
		],
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.unwrap();
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}
